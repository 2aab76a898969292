"""manage.py prune_logs [--days N] [--dry-run]: retention boundaries, batches, errors."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs.models import RequestLog
from testing.helpers import manage_py

NOW = dt.datetime(2026, 6, 15, 2, 0, 0, tzinfo=dt.UTC)


def _prune(*args):
    out = io.StringIO()
    call_command("prune_logs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.mark.django_db
def test_retention_boundaries_to_the_second(frozen_now, make_log_row):
    cutoff = frozen_now - dt.timedelta(days=90)
    outside = make_log_row(cutoff - dt.timedelta(seconds=1))
    at_cutoff = make_log_row(cutoff)
    inside = make_log_row(cutoff + dt.timedelta(seconds=1))
    recent = make_log_row(frozen_now - dt.timedelta(minutes=5))
    out = _prune()
    assert out == (
        "Deleted 1 request log(s) older than 90 days (created before 2026-03-17 02:00:00 UTC).\n"
    )
    assert set(RequestLog.objects.values_list("pk", flat=True)) == {
        at_cutoff.pk,
        inside.pk,
        recent.pk,
    }
    assert not RequestLog.objects.filter(pk=outside.pk).exists()


def _usage_by_day(since: dt.datetime) -> dict[str, tuple[int, int | None]]:
    from logs.usage import usage_summary

    items = usage_summary(group_by=["day"], since=since)["items"]
    return {item["day"]: (item["requests"], item["total_tokens"]) for item in items}


@pytest.mark.django_db
def test_pruned_days_stay_on_the_usage_page(make_log_row):
    at = timezone.now() - dt.timedelta(days=5)
    make_log_row(at)
    make_log_row(at)
    assert "Deleted 2 request log(s)" in _prune("--days", "2")
    assert _usage_by_day(at - dt.timedelta(days=1))[f"{at.astimezone(dt.UTC):%Y-%m-%d}"] == (2, 0)


@pytest.mark.django_db
def test_rows_past_the_retention_never_rolled_up_stay_in_the_usage_figures(
    frozen_now, make_log_row
):
    # Beyond the 30 days prune_logs used to roll up, and beyond roll_up_usage's 366.
    days_ago = [120, 120, 400]
    for n in days_ago:
        make_log_row(frozen_now - dt.timedelta(days=n), total=10)
    kept = make_log_row(frozen_now - dt.timedelta(days=3), total=5)
    before = _usage_by_day(frozen_now - dt.timedelta(days=500))
    assert "Deleted 3 request log(s) older than 90 days" in _prune()
    assert list(RequestLog.objects.values_list("pk", flat=True)) == [kept.pk]
    assert (
        _usage_by_day(frozen_now - dt.timedelta(days=500))
        == before
        == {
            f"{frozen_now - dt.timedelta(days=400):%Y-%m-%d}": (1, 10),
            f"{frozen_now - dt.timedelta(days=120):%Y-%m-%d}": (2, 20),
            f"{frozen_now - dt.timedelta(days=3):%Y-%m-%d}": (1, 5),
        }
    )


@pytest.mark.django_db
def test_a_dry_run_writes_nothing_at_all(frozen_now, make_log_row):
    from logs.models import UsageRollupDay

    make_log_row(frozen_now - dt.timedelta(days=100))
    _prune("--dry-run")
    assert not UsageRollupDay.objects.exists()


@pytest.mark.django_db
def test_days_defaults_to_log_retention_days(frozen_now, settings, make_log_row):
    settings.LOG_RETENTION_DAYS = 7
    make_log_row(frozen_now - dt.timedelta(days=7, seconds=1))
    kept = make_log_row(frozen_now - dt.timedelta(days=6, hours=23))
    assert "Deleted 1 request log(s) older than 7 days" in _prune()
    assert list(RequestLog.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_days_option_wins(frozen_now, make_log_row):
    make_log_row(frozen_now - dt.timedelta(days=3))
    make_log_row(frozen_now - dt.timedelta(days=1))
    assert "Deleted 1 request log(s) older than 2 days" in _prune("--days", "2")
    assert RequestLog.objects.count() == 1


@pytest.mark.django_db
def test_dry_run_counts_and_deletes_nothing(frozen_now, make_log_row):
    for days in (100, 120, 1):
        make_log_row(frozen_now - dt.timedelta(days=days))
    out = _prune("--dry-run")
    assert out.startswith("Would delete 2 request log(s) older than 90 days")
    assert "nothing deleted" in out
    assert RequestLog.objects.count() == 3


@pytest.mark.django_db
def test_verbosity_2_says_how_far_it_got_after_each_batch(frozen_now, make_log_row):
    for i in range(5):
        make_log_row(frozen_now - dt.timedelta(days=200, minutes=i))
    out = _prune("--batch-size", "2", "-v", "2")
    assert out.splitlines() == [
        "Deleting request logs older than 90 days (created before 2026-03-17 02:00:00 UTC), "
        "2 per batch…",
        "  deleted 2 so far…",
        "  deleted 4 so far…",
        "  deleted 5 so far…",
        "Deleted 5 request log(s) older than 90 days (created before 2026-03-17 02:00:00 UTC).",
    ]


@pytest.mark.django_db
def test_deletes_in_batches_each_its_own_statement(frozen_now, make_log_row):
    for i in range(5):
        make_log_row(frozen_now - dt.timedelta(days=200, minutes=i))
    kept = make_log_row(frozen_now)
    with CaptureQueriesContext(connection) as queries:
        out = _prune("--batch-size", "2")
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert "Deleted 5 request log(s)" in out
    assert list(RequestLog.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "must be 1 or more"),
        (["--days", "ten"], "must be a whole number"),
        (["--batch-size", "0"], "must be 1 or more"),
    ],
)
def test_clear_errors(args, message):
    with pytest.raises(CommandError, match=message):
        _prune(*args)


@pytest.mark.django_db
def test_a_zero_retention_setting_is_refused(settings, make_log_row):
    settings.LOG_RETENTION_DAYS = 0
    make_log_row(timezone.now())
    with pytest.raises(CommandError, match="LOG_RETENTION_DAYS must be 1 or more"):
        _prune()
    assert RequestLog.objects.count() == 1


def test_from_the_shell_with_the_real_clock(transactional_db, gateway_env, make_log_row):
    now = timezone.now()
    old = make_log_row(now - dt.timedelta(days=30, minutes=1))
    kept = make_log_row(now - dt.timedelta(days=30) + dt.timedelta(minutes=1))

    def run(*args):
        return manage_py("prune_logs", *args, env=gateway_env)

    help_text = run("--help")
    assert help_text.returncode == 0 and "--dry-run" in help_text.stdout
    assert "LOG_RETENTION_DAYS" in help_text.stdout
    bad = run("--days", "-3")
    assert bad.returncode != 0 and "must be 1 or more" in bad.stderr
    done = run("--days", "30")
    assert done.returncode == 0 and done.stdout.startswith("Deleted 1 request log(s)")
    assert not RequestLog.objects.filter(pk=old.pk).exists()
    assert RequestLog.objects.filter(pk=kept.pk).exists()
