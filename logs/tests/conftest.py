"""Factories of the logs app's tests."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from testing.helpers import log_row_create


@pytest.fixture
def make_log_row(db):
    """make_log_row(at=None, *, status=200, key=None, upstream=None, model="", prompt=,
    completion=, total=, cost=, **fields) -> a finished RequestLog row written directly
    (no proxy involved): testing.helpers.log_row_create."""
    return log_row_create


@pytest.fixture
def make_log(db):
    """make_log(key=, upstream=, at=, status=, model=, finish=True, **usage) -> request id:
    a row written by the logs services as the proxy writes it, then dated `at`
    (default 2026-03-01 12:00 UTC)."""
    from logs.models import RequestLog
    from logs.services import log_finish, log_open

    def make(*, key=None, upstream=None, at=None, status=200, model="gpt-x", finish=True,
             **usage):  # fmt: skip
        request_id = uuid.uuid4()
        log_id = log_open(
            request_id=request_id, method="POST", path="/v1/chat/completions",
            api_key_id=key.pk if key else None, upstream_id=upstream.pk if upstream else None,
            model=model,
        )  # fmt: skip
        if finish:
            log_finish(log_id=log_id, status_code=status, duration_ms=12, ttfb_ms=5, **usage)
        RequestLog.objects.filter(pk=log_id).update(created_at=at or MAKE_LOG_AT)
        return str(request_id)

    return make


MAKE_LOG_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
