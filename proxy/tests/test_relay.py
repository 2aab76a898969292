"""The relay against the real fake provider (no server in between): how each ending is reported."""

from __future__ import annotations

import json
import time

import pytest

from proxy import forward
from proxy.errors import StreamBroken
from proxy.relay import CLIENT_GONE, Relay, UsageFeed
from proxy.usage import usage_reader


def _send(provider, *, body: dict, timeout: float = 5.0, **headers) -> forward.UpstreamAnswer:
    return forward.upstream_send(
        method="POST",
        url=f"{provider.base_url}/chat/completions",
        headers={"Content-Type": "application/json", **headers},
        body=json.dumps(body).encode(),
        connect_timeout=2,
        read_timeout=timeout,
    )


def _relay(answer, *, endings, timeout=5.0, max_seconds=30.0, reader=None):
    started = time.monotonic()
    return Relay(
        answer=answer,
        usage=UsageFeed(
            reader or usage_reader(content_type=answer.header("Content-Type"), dialect="openai"),
            request_id="test",
        ),
        started=started,
        headers_at=started,
        read_timeout=timeout,
        deadline=started + max_seconds,
        on_end=endings.append,
    )


STREAM = {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "messages": []}


def test_a_complete_stream_ends_once_with_its_usage(provider):
    endings = []
    relay = _relay(_send(provider, body=STREAM, **{"x-fake-chunks": "4"}), endings=endings)
    body = b"".join(relay)
    relay.close()  # the server always closes; after the end it changes nothing
    assert body.endswith(b"data: [DONE]\n\n")
    (ending,) = endings
    assert (ending.status, ending.error) == (200, "")
    assert (ending.usage.prompt_tokens, ending.usage.completion_tokens) == (11, 4)


def test_close_mid_stream_closes_the_upstream_at_once(provider):
    endings = []
    answer = _send(provider, body=STREAM, **{"x-fake-chunks": "100", "x-fake-chunk-delay-ms": "50"})
    relay = _relay(answer, endings=endings)
    chunks = iter(relay)
    assert next(chunks) == b""  # the headers go out first
    assert next(chunks)
    relay.close()
    assert provider.wait_for_disconnects(1, timeout=3)
    (ending,) = endings
    assert (ending.status, ending.error) == (200, CLIENT_GONE)


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [("reset-mid", "broken"), ("close-mid", "broken"), ("stall-mid", "timeout")],
)
def test_a_broken_stream_raises_after_reporting_its_end(provider, scenario, kind):
    endings = []
    relay = _relay(
        _send(provider, body=STREAM, timeout=0.5, **{"x-fake-scenario": scenario}),
        endings=endings,
        timeout=0.5,
    )
    with pytest.raises(StreamBroken) as exc:
        for _ in relay:
            pass
    assert exc.value.kind == kind
    (ending,) = endings
    assert ending.error.startswith("stream cut short")
    relay.close()
    assert len(endings) == 1


def test_the_deadline_cuts_a_stream_that_never_goes_silent(provider):
    endings = []
    answer = _send(provider, body=STREAM, **{"x-fake-chunks": "100", "x-fake-chunk-delay-ms": "20"})
    relay = _relay(answer, endings=endings, max_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(StreamBroken) as exc:
        for _ in relay:
            pass
    assert exc.value.kind == "too_long"
    assert time.monotonic() - started < 1.5
    assert endings[0].error == "stream cut short: the answer took longer than the gateway allows"


class _BrokenReader:
    def feed(self, chunk):
        raise RuntimeError("parser bug")

    def result(self):
        raise AssertionError("never asked after a failure")


def test_a_failing_usage_reader_never_touches_the_stream(provider, caplog):
    endings = []
    answer = _send(provider, body=STREAM)
    relay = _relay(answer, endings=endings, reader=_BrokenReader())
    assert b"".join(relay).endswith(b"data: [DONE]\n\n")
    assert endings[0].error == ""
    assert endings[0].usage.prompt_tokens is None
    assert "usage reading failed for request test" in caplog.text


def test_a_refused_connection_and_a_silent_upstream_are_gateway_errors(provider):
    from proxy.errors import UpstreamTimeout, UpstreamUnreachable
    from testing.helpers import free_port

    with pytest.raises(UpstreamUnreachable, match="ConnectionRefusedError"):
        forward.upstream_send(
            method="GET",
            url=f"http://127.0.0.1:{free_port()}/v1/models",
            headers={},
            body=None,
            connect_timeout=2,
            read_timeout=2,
        )
    with pytest.raises(UpstreamTimeout):
        _send(provider, body=STREAM, timeout=0.3, **{"x-fake-scenario": "stall-headers"})
