import argparse
import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from logs.services import logs_prune


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


# On a terminal without -v 2, a progress line this often: a million rows take minutes.
PROGRESS_SECONDS = 5


class Command(BaseCommand):
    help = (
        "Delete request logs older than N days (default LOG_RETENTION_DAYS), in batches, "
        "each its own short transaction, and say how many. Every settled day from the oldest "
        "row deleted on (and of the last 30) is summed into the daily usage rollup first, so "
        "the usage figures never lose them."
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
        when = f"older than {days} days (created before {cutoff:%Y-%m-%d %H:%M:%S} UTC)"
        progress = self._progress(every_batch=options.get("verbosity", 1) >= 2)
        if progress is not None and not dry_run:
            self.stdout.write(f"Deleting request logs {when}, {batch_size} per batch…")
        result = logs_prune(
            cutoff=cutoff, batch_size=batch_size, dry_run=dry_run, on_batch=progress
        )
        if dry_run:
            self.stdout.write(
                f"Would delete {result.matched} request log(s) {when}; dry run, nothing deleted."
            )
        else:
            self.stdout.write(f"Deleted {result.deleted} request log(s) {when}.")

    def _progress(self, *, every_batch: bool):
        """A line per batch with -v 2; else, on a terminal, one every PROGRESS_SECONDS."""
        if not every_batch and not self.stdout.isatty():
            return None
        last = [time.monotonic()]

        def report(deleted: int) -> None:
            now = time.monotonic()
            if every_batch or now - last[0] >= PROGRESS_SECONDS:
                last[0] = now
                self.stdout.write(f"  deleted {deleted} so far…")

        return report
