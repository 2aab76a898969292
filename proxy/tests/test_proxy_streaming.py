"""Streams arrive as they are made, end abruptly when cut short, and always finish their row."""

from __future__ import annotations

import socket
import time

import anthropic
import httpx2
import openai
import pytest

from testing.helpers import finished_row, wait_until

CHAT = [{"role": "user", "content": "hi"}]
# What an SDK raises when the connection ends before the stream's clean end.
BROKEN_STREAM = (httpx2.HTTPError, openai.APIError, anthropic.APIError)


def test_a_slow_stream_reaches_the_client_chunk_by_chunk(openai_route):
    started = time.monotonic()
    arrivals = []
    stream = openai_route.openai().chat.completions.create(
        model="gpt-slow",
        messages=CHAT,
        stream=True,
        extra_headers={"x-fake-chunks": "10", "x-fake-chunk-delay-ms": "200"},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 10
    # The first delta is sent at ~0.2 s and the last at ~2 s: the first must arrive
    # long before the last is even made, and they keep their spacing.
    assert arrivals[0] < 1.0, arrivals
    assert arrivals[-1] - arrivals[0] > 1.4, arrivals
    row = finished_row()
    assert row.status_code == 200 and row.error == ""
    assert row.ttfb_ms < 1000  # the first event (the role delta) comes at once
    assert row.duration_ms >= 1900


def test_an_anthropic_stream_also_arrives_as_it_is_made(anthropic_route):
    started = time.monotonic()
    arrivals = []
    with anthropic_route.anthropic().messages.stream(
        model="claude-slow",
        max_tokens=50,
        messages=CHAT,
        extra_headers={"x-fake-chunks": "6", "x-fake-chunk-delay-ms": "200"},
    ) as stream:
        for _text in stream.text_stream:
            arrivals.append(time.monotonic() - started)
    # Made from ~0.2 s to ~1.2 s. The first arrives before the last is made, and they stay
    # spread out (a buffered answer arrives all at once). On a loaded machine the first
    # two were once held together until 0.55 s, so the spread asked for is half the 1 s.
    assert arrivals[0] < 1.0 and arrivals[-1] - arrivals[0] > 0.5, arrivals


def _stream_until_it_breaks(route, scenario: str) -> list[str]:
    received = []
    with pytest.raises(BROKEN_STREAM):
        stream = route.openai().chat.completions.create(
            model="gpt-test",
            messages=CHAT,
            stream=True,
            extra_headers={"x-fake-scenario": scenario, "x-fake-chunks": "5"},
        )
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    return received


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("stall-mid", "stream cut short: the upstream sent nothing for 1 seconds"),
        ("reset-mid", "stream cut short: the upstream connection broke (ConnectionResetError)"),
        ("close-mid", "stream cut short: the upstream connection broke (IncompleteRead)"),
    ],
)
def test_a_stream_cut_short_upstream_ends_the_client_connection_abruptly(
    gateway, make_route, provider, scenario, error
):
    route = make_route(timeout=1)
    errors_before = gateway.output().count("Error handling request")
    received = _stream_until_it_breaks(route, scenario)
    assert len(received) <= 1  # the first event came through, then the SDK raised
    row = finished_row()
    assert row.status_code == 200  # the status the client received
    assert row.error.startswith(error), row.error
    assert row.duration_ms < 5000
    # The server log says it in one warning line, not as an error with a traceback.
    wait_until(lambda: f"request {row.request_id}: stream cut short" in gateway.output())
    assert gateway.output().count("Error handling request") == errors_before


def test_an_anthropic_stream_cut_short_raises_in_the_sdk(make_route):
    route = make_route(provider="anthropic", timeout=1)
    with pytest.raises(BROKEN_STREAM):
        with route.anthropic().messages.stream(
            model="claude-test",
            max_tokens=50,
            messages=CHAT,
            extra_headers={"x-fake-scenario": "reset-mid"},
        ) as stream:
            for _ in stream.text_stream:
                pass
            stream.get_final_message()
    row = finished_row()
    assert row.error.startswith("stream cut short")
    # message_start arrived before the reset: input tokens are known, output is not.
    assert (row.prompt_tokens, row.completion_tokens) == (11, None)


def test_a_client_that_leaves_mid_stream_frees_the_upstream_and_finishes_its_row(
    gateway, openai_route, provider
):
    body = b'{"model": "gpt-long", "stream": true, "messages": []}'
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {openai_route.raw_key}\r\n"
        "Content-Type: application/json\r\n"
        "x-fake-chunks: 200\r\nx-fake-chunk-delay-ms: 50\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(head + body)
    received = b""
    while b"chunk-1 " not in received:
        received += sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 200")
    left_at = time.monotonic()
    sock.close()

    assert provider.wait_for_disconnects(1, timeout=5), "the upstream connection stayed open"
    row = finished_row(timeout=5)
    assert time.monotonic() - left_at < 5
    assert (row.status_code, row.error) == (200, "client disconnected")
    assert row.duration_ms < 5000  # far less than the 10 s the full answer would take


@pytest.fixture(scope="module")
def short_gateway(start_gateway):
    """A gateway whose answers may last 1.5 s at most."""
    return start_gateway(workers=1, env={"PROXY_MAX_STREAM_SECONDS": "1.5"})


def test_max_stream_seconds_bounds_a_whole_answer(short_gateway, make_route):
    route = make_route(gateway_url=short_gateway.url, timeout=5)
    started = time.monotonic()
    received = []
    with pytest.raises(BROKEN_STREAM):
        for chunk in route.openai().chat.completions.create(
            model="gpt-test",
            messages=CHAT,
            stream=True,
            extra_headers={"x-fake-chunks": "40", "x-fake-chunk-delay-ms": "100"},
        ):
            if chunk.choices:
                received.append(chunk)
    assert 1.4 < time.monotonic() - started < 4
    assert 5 < len(received) < 40
    row = finished_row()
    assert row.error == "stream cut short: the answer took longer than the gateway allows"


def test_the_stream_bound_also_cuts_a_silence_shorter_than_the_timeout(short_gateway, make_route):
    route = make_route(gateway_url=short_gateway.url, timeout=30)
    started = time.monotonic()
    _stream_until_it_breaks(route, "stall-mid")
    assert time.monotonic() - started < 4  # not the upstream's 30 s timeout
    assert (
        finished_row().error == "stream cut short: the answer took longer than the gateway allows"
    )
