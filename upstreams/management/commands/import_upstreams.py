from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from upstreams.exceptions import InvalidUpstreamData
from upstreams.services import upstreams_import


class Command(BaseCommand):
    help = (
        "Import upstreams from the UPSTREAMS environment variable (a JSON list). "
        "All or nothing; names that already exist are left as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Import only when there is no upstream at all (what the setup command does).",
        )

    def handle(self, *args, if_empty: bool = False, **options):
        raw = settings.UPSTREAMS.strip()
        if not raw:
            self.stdout.write("UPSTREAMS is not set; nothing to import.")
            return
        try:
            result = upstreams_import(raw_json=raw, if_empty=if_empty)
        except InvalidUpstreamData as exc:
            raise CommandError(f"UPSTREAMS not imported: {exc}") from None
        if result.skipped_not_empty:
            self.stdout.write("Upstreams exist already; UPSTREAMS not imported (--if-empty).")
        else:
            self.stdout.write(
                f"Imported {result.created} upstream(s); "
                f"{result.skipped_existing} already existed and were left unchanged."
            )
