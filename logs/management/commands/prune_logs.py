import argparse
import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from logs.services import logs_prune, usage_roll_up


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


class Command(BaseCommand):
    help = (
        "Delete request logs older than N days (default LOG_RETENTION_DAYS), in batches, "
        "each its own short transaction, and say how many. Settled days of the last 30 "
        "are summed into the usage page's daily rollup first, so pruning never loses them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=_positive,
            default=None,
            metavar="N",
            help=f"keep the last N days (default LOG_RETENTION_DAYS, now {settings.LOG_RETENTION_DAYS})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
        )
        parser.add_argument(
            "--batch-size",
            type=_positive,
            default=5000,
            metavar="ROWS",
            help="rows deleted per transaction (default 5000)",
        )

    def handle(self, *args, days=None, dry_run=False, batch_size=5000, **options):
        days = days or settings.LOG_RETENTION_DAYS
        if days < 1:
            raise CommandError(f"LOG_RETENTION_DAYS must be 1 or more (it is {days}).")
        cutoff = timezone.now() - dt.timedelta(days=days)
        if not dry_run:
            # Sum settled days into the usage rollup first: the usage page keeps them.
            usage_roll_up()
        result = logs_prune(cutoff=cutoff, batch_size=batch_size, dry_run=dry_run)
        when = f"older than {days} days (created before {cutoff:%Y-%m-%d %H:%M:%S} UTC)"
        if dry_run:
            self.stdout.write(
                f"Would delete {result.matched} request log(s) {when}; dry run, nothing deleted."
            )
        else:
            self.stdout.write(f"Deleted {result.deleted} request log(s) {when}.")
