"""Request log rows as CSV or JSON Lines, streamed in constant memory.

Rows are read oldest first in keyset batches ((created_at, id) > the last one seen,
on the logs_created_idx index), so memory holds one batch whatever the number of
rows, and no server-side cursor or long transaction is needed. The columns are
those of the admin API's JSON rows (logs.api.serializers), in the same formats.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal

from django.db.models import Q, QuerySet

from logs.models import RequestLog

BATCH_ROWS = 2000
COST_PLACES = Decimal("1e-12")
# (column in the answer, what is read from the database)
COLUMNS = [
    ("id", "request_id"),
    ("api_key_id", "api_key_id"),
    ("api_key_prefix", "api_key__key_prefix"),
    ("upstream_id", "upstream_id"),
    ("upstream_name", "upstream__name"),
    ("method", "method"),
    ("path", "path"),
    ("model", "model"),
    ("upstream_model", "upstream_model"),
    ("attempts", "attempts"),
    ("is_stream", "is_stream"),
    ("status_code", "status_code"),
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("total_tokens", "total_tokens"),
    ("cache_read_tokens", "cache_read_tokens"),
    ("cache_write_tokens", "cache_write_tokens"),
    ("cost_usd", "cost_usd"),
    ("duration_ms", "duration_ms"),
    ("ttfb_ms", "ttfb_ms"),
    ("error", "error"),
    ("state", "state"),
    ("created_at", "created_at"),
    ("finished_at", "finished_at"),
]
NAMES = [name for name, _ in COLUMNS]
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _value(value):
    """A value as the JSON rows show it (DRF's formats)."""
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).isoformat()
        return text.removesuffix("+00:00") + "Z"
    if isinstance(value, Decimal):
        return str(value.quantize(COST_PLACES))
    if value is not None and not isinstance(value, bool | int | str):
        return str(value)  # UUIDs
    return value


def _rows(queryset: QuerySet) -> Iterator[list]:
    """Every row of the queryset, oldest first, a batch at a time."""
    base = queryset.order_by("created_at", "id")
    fields = [source for _, source in COLUMNS]
    last = None
    while True:
        page = base
        if last is not None:
            at, pk = last
            page = page.filter(Q(created_at__gt=at) | Q(created_at=at, id__gt=pk))
        batch = list(page.values_list("created_at", "id", *fields)[:BATCH_ROWS])
        if not batch:
            return
        for row in batch:
            yield [_value(v) for v in row[2:]]
        last = batch[-1][:2]
        if len(batch) < BATCH_ROWS:
            return


def export_lines(queryset: QuerySet, fmt: str) -> Iterator[bytes]:
    """The export of these rows, a batch of lines per chunk: CSV with one header line, or JSONL."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(NAMES)
        for count, row in enumerate(_rows(queryset), start=1):
            # CSV has no null: an unknown value is an empty cell, as a true or false is text.
            writer.writerow(
                [
                    "" if v is None else ("true" if v is True else "false" if v is False else v)
                    for v in row
                ]
            )
            if count % BATCH_ROWS == 0:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")
        return
    lines: list[str] = []
    for row in _rows(queryset):
        lines.append(json.dumps(dict(zip(NAMES, row, strict=True)), ensure_ascii=False))
        if len(lines) == BATCH_ROWS:
            yield ("\n".join(lines) + "\n").encode("utf-8")
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode("utf-8")


def export_queryset() -> QuerySet:
    """The rows an export may read: every log row with its key's prefix and upstream's name."""
    return RequestLog.objects.all()
