"""The load generator counts what a client would see: whole answers, cut streams, statuses."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench import loadgen
from testing.fake_provider import FakeProvider


@pytest.fixture(scope="module")
def fp():
    provider = FakeProvider(record=False).start()
    yield provider
    provider.stop()


def request(fp, *, stream: bool = False, **headers: str) -> bytes:
    body = {"model": "m", "messages": [], "stream": stream}
    return loadgen.build_request(
        "POST",
        "/v1/chat/completions",
        f"127.0.0.1:{fp.port}",
        {"Content-Type": "application/json", **headers},
        json.dumps(body).encode(),
    )


def test_sequential_rounds_reuse_one_connection_per_target(fp):
    targets = {
        "json": ("127.0.0.1", fp.port, request(fp)),
        "stream": ("127.0.0.1", fp.port, request(fp, stream=True)),
    }
    series = asyncio.run(loadgen.sequential(targets, 30, warmup=5))
    assert [(s.count, s.errors) for s in series.values()] == [(30, 0), (30, 0)]
    assert all(
        0 < t <= lat for s in series.values() for t, lat in zip(s.ttfbs, s.latencies, strict=True)
    )


def test_whole_answers_are_read_back(fp):
    async def one():
        conn = loadgen.Connection("127.0.0.1", fp.port)
        outcomes = [await conn.call(request(fp, stream=s), keep_body=True) for s in (False, True)]
        conn.close()
        return outcomes

    plain, streamed = asyncio.run(one())
    assert json.loads(plain.body)["usage"]["total_tokens"] == 14
    assert streamed.ok and streamed.body.endswith(b"data: [DONE]\n\n")


def test_concurrent_clients_for_a_duration(fp):
    series = asyncio.run(
        loadgen.concurrent("127.0.0.1", fp.port, request(fp), concurrency=4, duration=0.3)
    )
    assert series.count > 20 and series.errors == 0 and series.rate > 0


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"x-fake-scenario": "close-mid"}, "connection lost"),
        ({"x-fake-scenario": "reset-mid"}, "connection lost"),
        ({"x-fake-status": "429"}, "status 429"),
    ],
)
def test_cut_streams_and_error_statuses_count_as_errors(fp, headers, error):
    series = asyncio.run(
        loadgen.burst("127.0.0.1", fp.port, request(fp, stream=True, **headers), count=5, timeout=5)
    )
    assert series.errors == 5 and series.count == 0
    assert all(error in e for e in series.error_samples)


def test_a_stall_is_a_timeout(fp):
    data = request(fp, **{"x-fake-scenario": "stall-headers"})
    series = asyncio.run(loadgen.burst("127.0.0.1", fp.port, data, count=2, timeout=0.2))
    assert series.errors == 2 and series.error_samples == ["timeout", "timeout"]


def test_a_ramped_burst_holds_every_stream_open_at_once(fp):
    data = request(fp, stream=True, **{"x-fake-chunks": "5", "x-fake-chunk-delay-ms": "60"})
    series = asyncio.run(loadgen.burst("127.0.0.1", fp.port, data, count=30, timeout=5, ramp=0.1))
    assert series.errors == 0 and series.peak_open == 30
    assert min(series.latencies) >= 0.29 and max(series.ttfbs) < 0.25
