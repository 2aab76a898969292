import sys

from django.core.management.base import BaseCommand, CommandError

from gatewaysite.history import COMMAND
from prices.exceptions import InvalidPriceData
from prices.services import prices_import


class Command(BaseCommand):
    help = (
        "Import prices from FILE: our JSON list (the /admin/prices fields, USD per million "
        "tokens) or LiteLLM's model_prices_and_context_window.json (USD per token). "
        "All or nothing; says how many were added, changed and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The JSON file to read ('-' for standard input).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would change; change nothing."
        )

    def handle(self, *args, file: str, dry_run: bool = False, **options):
        try:
            if file == "-":
                text = sys.stdin.read()
            else:
                with open(file, encoding="utf-8") as handle:
                    text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        try:
            result = prices_import(actor=COMMAND, text=text, dry_run=dry_run)
        except InvalidPriceData as exc:
            raise CommandError(f"No prices imported: {exc}") from None
        verb = "Would add" if dry_run else "Added"
        self.stdout.write(
            f"{verb} {result.added}, {'would change' if dry_run else 'changed'} "
            f"{result.changed}, skipped {result.skipped} price(s)."
        )
