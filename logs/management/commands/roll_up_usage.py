from django.core.management.base import BaseCommand

from logs.management.commands.prune_logs import _positive
from logs.services import usage_roll_up

# As far back as the usage page's ranges reach (a year), so every range reads the rollup.
DEFAULT_DAYS = 366


class Command(BaseCommand):
    help = (
        "Sum each settled UTC day of the last N days (default 366) into the usage rollup, "
        "once, and say how many days were added. The usage page and GET /admin/usage read "
        "it and sum the days it lacks from the logs, so the figures are the same either "
        "way; run it hourly from cron so they stay fast. prune_logs runs it too."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=_positive,
            default=DEFAULT_DAYS,
            metavar="N",
            help=f"look back N days, today included (default {DEFAULT_DAYS})",
        )

    def handle(self, *args, days=DEFAULT_DAYS, **options):
        added = usage_roll_up(days=days)
        self.stdout.write(f"Rolled up {added} settled day(s) of usage from the last {days} days.")
