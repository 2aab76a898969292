"""Time the admin's request-log pages and the usage page on a large log table.

    .venv/bin/python bench/admin_pages.py --rows 1000000 --database sqlite
    .venv/bin/python bench/admin_pages.py --rows 1000000 --database postgres

It fills a database of its own (SQLite: DATA_DIR/bench-admin.sqlite3; PostgreSQL:
the database gw_bench_admin, created if missing), never the gateway's, with rows
spread over the last 45 days, then renders each page in-process through Django's
test client as a logged-in superuser and prints the median and worst time of
--runs renders (after one warm-up) and the number of SQL queries per page.
--keep reuses a database that already holds --rows rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = (
    ["gpt-4o-mini"] * 50 + ["gpt-4o"] * 25 + ["claude-sonnet-4"] * 20 + ["o3"] * 4 + ["rare-model"]
)
STATUSES = [200] * 93 + [400, 401, 404, 429, 429] + [500, 502] + [0]


def _configure(args) -> None:
    from cryptography.fernet import Fernet

    data_dir = Path(os.environ.get("DATA_DIR", ROOT / "data"))
    if args.database == "sqlite":
        url = f"sqlite:///{data_dir / 'bench-admin.sqlite3'}"
    else:
        url = f"{args.pg_url.rstrip('/')}/{args.pg_db}"
        _create_pg_database(args.pg_url, args.pg_db)
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="gatewaysite.settings",
        ALLOWED_HOSTS="testserver",
        DEBUG="false",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-secret-key",
    )
    os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())
    os.environ.pop("ENCRYPTION_KEY_FILE", None)
    import django

    django.setup()


def _create_pg_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _fill(rows: int, *, keep: bool) -> None:
    from django.core.management import call_command
    from django.db import connection

    from keys.models import APIKey
    from keys.services import key_create
    from logs.models import RequestLog
    from upstreams.models import Upstream
    from upstreams.services import upstream_create

    call_command("migrate", verbosity=0)
    have = RequestLog.objects.count()
    if keep and have == rows:
        print(f"reusing {have:,} rows", file=sys.stderr)
        return
    _truncate(connection)
    if not Upstream.objects.exists():
        for name, provider in (
            ("openai", "openai"),
            ("anthropic", "anthropic"),
            ("azure", "openai"),
        ):
            upstream_create(
                actor="bench",
                name=name,
                provider=provider,
                base_url="http://127.0.0.1:9/v1",
                api_key=f"sk-bench-{name}-secret-0000",
            )
    upstreams = list(Upstream.objects.values_list("id", flat=True))
    if APIKey.objects.count() < 20:
        for i in range(20):
            key_create(actor="bench", name=f"bench key {i}", upstream_ids=upstreams)
    keys = list(APIKey.objects.values_list("id", flat=True))
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    span = 45 * 24 * 3600
    columns = [
        "request_id",
        "api_key_id",
        "upstream_id",
        "method",
        "path",
        "model",
        "is_stream",
        "status_code",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "duration_ms",
        "ttfb_ms",
        "error",
        "state",
        "created_at",
        "finished_at",
        "upstream_model",
        "attempts",
    ]
    started = time.monotonic()
    chunk = 50_000
    for offset in range(0, rows, chunk):
        batch = []
        for _ in range(min(chunk, rows - offset)):
            created = now - dt.timedelta(seconds=rng.random() * span)
            status = rng.choice(STATUSES)
            known = status == 200 and rng.random() < 0.97
            prompt = rng.randint(10, 4000) if known else None
            completion = rng.randint(1, 1000) if known else None
            duration = rng.randint(50, 20_000)
            upstream = rng.choice(upstreams) if status != 401 else None
            batch.append(
                (
                    uuid.UUID(int=rng.getrandbits(128), version=4),
                    rng.choice(keys) if status != 401 else None,
                    upstream,
                    "POST",
                    "/v1/chat/completions",
                    rng.choice(MODELS),
                    rng.random() < 0.5,
                    status,
                    prompt,
                    completion,
                    (prompt + completion) if known else None,
                    None,
                    None,
                    Decimal(prompt * 25 + completion * 100) / 10**7 if known else None,
                    duration,
                    min(duration, rng.randint(20, 2000)),
                    "" if status else "upstream unreachable",
                    "finished",
                    created,
                    created + dt.timedelta(milliseconds=duration),
                    "",  # no alias: the model sent upstream is the one asked for
                    1 if upstream else 0,
                )
            )
        _insert(connection, RequestLog._meta.db_table, columns, batch)
        print(f"  {offset + len(batch):,} rows", file=sys.stderr, end="\r")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"filled {rows:,} rows in {time.monotonic() - started:.0f}s", file=sys.stderr)


def _truncate(connection) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE logs_requestlog")
        else:
            cursor.execute("DELETE FROM logs_requestlog")


def _insert(connection, table: str, columns: list[str], batch: list[tuple]) -> None:
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            adapted = [tuple(_sqlite_value(connection, v) for v in row) for row in batch]
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                adapted,
            )


def _sqlite_value(connection, value):
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, uuid.UUID):
        return value.hex  # how Django stores a UUIDField on SQLite
    if isinstance(value, Decimal):
        return str(value)
    return value


def _pages() -> list[tuple[str, str]]:
    from django.urls import reverse

    from keys.models import APIKey
    from logs.models import RequestLog
    from upstreams.models import Upstream

    logs = reverse("admin:logs_requestlog_changelist")
    usage = reverse("admin:logs_requestlog_usage")
    key = APIKey.objects.order_by("created_at").first()
    upstream = Upstream.objects.get(name="anthropic")
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    sample = RequestLog.objects.order_by("-id").values_list("request_id", flat=True)[500]
    keys = reverse("admin:keys_apikey_changelist")
    upstreams = reverse("admin:upstreams_upstream_changelist")
    return [
        ("dashboard (admin index)", reverse("admin:index")),
        ("logs changelist, first page", logs),
        ("logs changelist, page 50", f"{logs}?p=50"),
        ("logs filtered: status 5xx", f"{logs}?status_class=5xx"),
        ("logs filtered: one key", f"{logs}?api_key__id__exact={key.pk}"),
        ("logs filtered: a rare model", f"{logs}?model=rare-model"),
        (
            "logs date hierarchy: one day",
            f"{logs}?created_at__year={yesterday.year}"
            f"&created_at__month={yesterday.month}"
            f"&created_at__day={yesterday.day}",
        ),
        ("logs search: request id", f"{logs}?q={sample}"),
        ("logs search: key prefix", f"{logs}?q={key.key_prefix}"),
        ("logs search: a model", f"{logs}?q=rare-model"),
        ("logs filtered: errors today", f"{logs}?status_class=error&created_at__gte={_today()}"),
        (
            "log detail page",
            reverse(
                "admin:logs_requestlog_change",
                args=[RequestLog.objects.order_by("-id").values_list("id", flat=True)[0]],
            ),
        ),
        ("usage page, all traffic, 30 days by key", usage),
        ("usage page, one key", f"{usage}?key={key.pk}"),
        ("usage page, one upstream", f"{usage}?upstream={upstream.pk}"),
        ("usage page, last month by model", f"{usage}?range=last_month&group_by=model"),
        ("key list", keys),
        ("key page (usage 30 days, lineage)", reverse("admin:keys_apikey_change", args=[key.pk])),
        ("upstream list (last hour's traffic)", upstreams),
        ("upstream page", reverse("admin:upstreams_upstream_change", args=[upstream.pk])),
        ("API /admin/usage by day", "/admin/usage?group_by=day"),
        ("API /admin/usage by key and model", "/admin/usage?group_by=key,model"),
        (
            "API /admin/usage, one key's lineage by upstream",
            f"/admin/usage?group_by=upstream&api_key_id={key.pk}&lineage=true",
        ),
        (
            "API /admin/usage by model, 7 days mid-day to mid-day",
            f"/admin/usage?group_by=model&since={_week_ago()}",
        ),
    ]


def _today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def _week_ago() -> str:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=7, hours=3)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_pages(runs: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first() or (
        user_model.objects.create_superuser("bench-admin", "bench@example.com", None)
    )
    client = Client()
    client.force_login(user)
    # The admin API's pages (/admin/…) open with the token, not the session.
    from django.conf import settings

    settings.ADMIN_TOKEN = settings.ADMIN_TOKEN or "bench-admin-token"
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {settings.ADMIN_TOKEN}"
    results = []
    plain = {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    with override_settings(STORAGES=plain):
        results.append(_time_cold_usage(client))
        for label, url in _pages():
            response = client.get(url)  # warm-up (and a check)
            assert response.status_code == 200, (label, response.status_code)
            reset_queries()  # each request clears the log at its start anyway
            with CaptureQueriesContext(connection) as queries:
                client.get(url)
            query_count = len(queries.captured_queries)  # read now: the next request clears it
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
            results.append(
                {
                    "page": label,
                    "url": url,
                    "median_ms": statistics.median(timings),
                    "max_ms": max(timings),
                    "queries": query_count,
                }
            )
            print(f"  {label}: {results[-1]['median_ms']:.0f} ms", file=sys.stderr)
    return results


def _time_cold_usage(client) -> dict:
    """The usage rollup filled from empty, as `manage.py roll_up_usage` does (hourly from
    cron in production): the pages timed after it read the rollup, as they would there.
    A GET never fills it (a read does not write)."""
    from django.core.management import call_command

    from logs.models import DailyUsage, UsageRollupDay

    DailyUsage.objects.all().delete()
    UsageRollupDay.objects.all().delete()
    started = time.perf_counter()
    call_command("roll_up_usage", stdout=io.StringIO())
    elapsed = (time.perf_counter() - started) * 1000
    print(f"  roll_up_usage from an empty rollup: {elapsed:.0f} ms", file=sys.stderr)
    return {
        "page": "manage.py roll_up_usage from an empty rollup (once; the pages below read it)",
        "url": "",
        "median_ms": elapsed,
        "max_ms": elapsed,
        "queries": "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--pg-url",
        default="postgres://postgres@127.0.0.1:5432",
        help="server URL without a database name",
    )
    parser.add_argument("--pg-db", default="gw_bench_admin")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse a database holding --rows rows")
    args = parser.parse_args()
    _configure(args)
    _fill(args.rows, keep=args.keep)
    results = _time_pages(args.runs)
    from django.db import connection

    print(
        f"\n{args.rows:,} log rows, {connection.vendor}, median and worst of {args.runs} renders\n"
    )
    print("| page | median | worst | SQL queries |")
    print("| --- | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['page']} | {r['median_ms']:.0f} ms | {r['max_ms']:.0f} ms | {r['queries']} |")


if __name__ == "__main__":
    main()
