"""Slow uploads: a body that trickles in holds no database connection, and ends as a
408 `request_timeout` with its row once its deadline (PROXY_BODY_TIMEOUT plus one
second per PROXY_BODY_MIN_RATE bytes received) runs out."""

from __future__ import annotations

import socket
import statistics
import threading
import time

import pytest
import requests

from logs.models import RequestLog
from testing.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
SLOW_UPLOADS = 50


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _timed_requests(url: str, key: str, count: int) -> tuple[list[int], list[float]]:
    statuses, durations = [], []
    with requests.Session() as session:
        for _ in range(count):
            started = time.monotonic()
            r = session.post(
                f"{url}/v1/chat/completions",
                json=CHAT,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            durations.append(time.monotonic() - started)
            statuses.append(r.status_code)
    return statuses, durations


class _SlowUpload(threading.Thread):
    """Declares a 100 kB body, then sends one byte a second; keeps what comes back."""

    def __init__(self, port: int, key: str):
        super().__init__(daemon=True)
        self.port, self.key = port, key
        self.answer = b""
        self.first_byte_sent = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            sock.sendall(
                (
                    "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {self.key}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100000\r\n\r\n{"
                ).encode()
            )
            self.first_byte_sent.set()
            sock.settimeout(1.0)
            while True:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    try:
                        sock.sendall(b" ")
                    except OSError:
                        return
                    continue
                except OSError:
                    return
                if not data:
                    return
                self.answer += data


def test_slow_uploads_leave_normal_requests_alone_and_end_as_408_with_rows(
    start_gateway, make_route
):
    gateway = start_gateway(
        workers=2, env={"PROXY_BODY_TIMEOUT": "10", "PROXY_BODY_MIN_RATE": "1000"}
    )
    route = make_route(provider="openai", gateway_url=gateway.url, timeout=5)
    _timed_requests(gateway.url, route.raw_key, 5)  # warm both workers
    quiet_statuses, quiet = _timed_requests(gateway.url, route.raw_key, 40)
    assert set(quiet_statuses) == {200}

    uploads = [_SlowUpload(gateway.port, route.raw_key) for _ in range(SLOW_UPLOADS)]
    for upload in uploads:
        upload.start()
    for upload in uploads:
        assert upload.first_byte_sent.wait(10)
    # Let every upload be authenticated and reach its body read on the server (50 at
    # once cost the first normal requests a few hundred ms of p99, a start-up transient).
    time.sleep(3.0)
    loaded_statuses, loaded = _timed_requests(gateway.url, route.raw_key, 40)

    # Normal requests are unaffected: all answered, their p99 as without the uploads
    # (with a little room for a loaded test machine).
    print(
        f"p50/p99 quiet {statistics.median(quiet) * 1000:.1f}/{_p99(quiet) * 1000:.1f} ms, "
        f"with {SLOW_UPLOADS} slow uploads "
        f"{statistics.median(loaded) * 1000:.1f}/{_p99(loaded) * 1000:.1f} ms"
    )
    assert set(loaded_statuses) == {200}
    assert _p99(loaded) <= max(2 * _p99(quiet), _p99(quiet) + 0.25), (quiet, loaded)

    for upload in uploads:
        upload.join(timeout=30)
    answers = [u.answer.decode(errors="replace") for u in uploads]
    assert all(a.startswith("HTTP/1.1 408 ") for a in answers), answers[:3]
    assert all('"request_timeout"' in a for a in answers)

    def slow_rows():
        rows = RequestLog.objects.filter(status_code=408)
        return rows if rows.count() == SLOW_UPLOADS else None

    rows = wait_until(slow_rows, timeout=20, message="the slow uploads left no 408 rows")
    # The body is read before an upstream is chosen (admission and routing need it),
    # so a body that never arrives leaves a row with its key and no upstream.
    assert {(r.api_key_id, r.upstream_id, r.state) for r in rows} == {
        (route.key.pk, None, RequestLog.State.FINISHED)
    }
