from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gatewaysite.history import COMMAND
from upstreams.exceptions import InvalidUpstreamData
from upstreams.services import upstreams_import


class Command(BaseCommand):
    help = (
        "Import upstreams from the UPSTREAMS environment variable, or a JSON file (--file), "
        "a list in the UPSTREAMS format. All or nothing; names that already exist are left "
        "as they are. --dry-run checks it all and says what would be imported."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Import only when there is no upstream at all (what the setup command does).",
        )
        parser.add_argument(
            "--file", metavar="F", help="read the JSON list from this file instead of UPSTREAMS"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check and report; import nothing"
        )

    def handle(self, *args, if_empty=False, file=None, dry_run=False, **options):
        source, raw = self._source(file)
        if not raw:
            self.stdout.write(f"{source} is not set; nothing to import.")
            return
        try:
            result = upstreams_import(
                actor=COMMAND, raw_json=raw, if_empty=if_empty, dry_run=dry_run, source=source
            )
        except InvalidUpstreamData as exc:
            raise CommandError(f"{source} not imported: {exc}") from None
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        if result.skipped_not_empty:
            self.stdout.write(f"Upstreams exist already; {source} not imported (--if-empty).")
            return
        names = ", ".join(result.created_names) or "none"
        kept = f" ({', '.join(result.existing_names)})" if result.existing_names else ""
        if dry_run:
            self.stdout.write(
                f"Would import {result.created} upstream(s): {names}; "
                f"{result.skipped_existing} already exist and would be left unchanged{kept}. "
                "Dry run: nothing imported."
            )
        else:
            self.stdout.write(
                f"Imported {result.created} upstream(s); "
                f"{result.skipped_existing} already existed and were left unchanged."
            )

    def _source(self, file: str | None) -> tuple[str, str]:
        if file is None:
            return "UPSTREAMS", settings.UPSTREAMS.strip()
        try:
            return file, Path(file).read_text(encoding="utf-8").strip() or "[]"
        except (OSError, UnicodeError) as exc:
            raise CommandError(f"{file} cannot be read: {exc.strerror or exc}") from None
