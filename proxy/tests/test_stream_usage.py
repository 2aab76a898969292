"""Asking OpenAI chat streams for usage, and taking the added chunk out: pure, table-tested,
with the stream cut at every byte."""

from __future__ import annotations

import json

import pytest

from proxy.stream_usage import HOLD_BYTES, UsageChunkFilter, is_usage_only, with_stream_usage


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model":"m","stream":true}',
         b'{"stream_options":{"include_usage":true},"model":"m","stream":true}'),
        (b'  {\n  "model": "m", "stream": true}',
         b'  {\n  "stream_options":{"include_usage":true},"model": "m", "stream": true}'),
        (b'{"model":"m","stream":true,"stream_options":{"include_usage":true}}', None),
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"model": "m", "stream": tru', None),
    ],
)  # fmt: skip
def test_the_option_is_added_after_the_opening_brace_leaving_the_rest_as_written(body, expected):
    assert with_stream_usage(body) == expected


@pytest.mark.parametrize(
    "options", [{"include_usage": False}, {"continuous_usage_stats": False}, None, "junk"]
)
def test_other_stream_options_are_kept_and_include_usage_set(options):
    body = json.dumps({"model": "m", "stream": True, "stream_options": options}).encode()
    sent = json.loads(with_stream_usage(body))
    kept = options if isinstance(options, dict) else {}
    assert sent == {"model": "m", "stream": True, "stream_options": {**kept, "include_usage": True}}


def test_a_body_too_big_to_parse_gets_the_option_spliced_in():
    prompt = "x" * (2 * 1024 * 1024)
    body = json.dumps({"messages": [{"role": "user", "content": prompt}], "stream": True}).encode()
    sent = with_stream_usage(body)
    assert json.loads(sent)["stream_options"] == {"include_usage": True}
    assert sent.endswith(body[1:])
    with_options = body[:-1] + b', "stream_options": {}}'
    assert with_stream_usage(with_options) is None  # not parsed: sent as it came


def chunk(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


DELTA = chunk({"id": "c1", "object": "chat.completion.chunk", "usage": None,
               "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]})  # fmt: skip
FINISH = chunk({"id": "c1", "object": "chat.completion.chunk", "usage": None,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})  # fmt: skip
USAGE = chunk({"id": "c1", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})  # fmt: skip
DONE = b"data: [DONE]\n\n"


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def run(stream: bytes, cuts) -> bytes:
    f = UsageChunkFilter()
    out = b""
    start = 0
    for cut in [*cuts, len(stream)]:
        out += f.feed(stream[start:cut])
        start = cut
    return out + f.flush()


CASES = {
    "lf": (DELTA + DELTA + FINISH + USAGE + DONE, DELTA + DELTA + FINISH + DONE),
    "crlf": (crlf(DELTA + FINISH + USAGE + DONE), crlf(DELTA + FINISH + DONE)),
    "cr": (
        (DELTA + USAGE + DONE).replace(b"\n", b"\r"),
        (DELTA + DONE).replace(b"\n", b"\r"),
    ),
    "comments and event names": (
        b": keep-alive\n\n" + b"event: chunk\n" + DELTA + USAGE + DONE,
        b": keep-alive\n\n" + b"event: chunk\n" + DELTA + DONE,
    ),
    "no usage chunk": (DELTA + FINISH + DONE, DELTA + FINISH + DONE),
    "only the first usage chunk goes": (DELTA + USAGE + USAGE + DONE, DELTA + USAGE + DONE),
    "an unfinished last event is sent at the end": (DELTA + b"data: {", DELTA + b"data: {"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_only_the_usage_chunk_is_removed_wherever_the_stream_is_cut(name):
    stream, expected = CASES[name]
    assert run(stream, []) == expected
    for cut in range(1, len(stream)):
        assert run(stream, [cut]) == expected, cut
    assert run(stream, range(1, len(stream))) == expected  # a byte at a time


def test_a_complete_event_is_sent_on_at_once():
    f = UsageChunkFilter()
    assert f.feed(DELTA) == DELTA
    assert f.feed(DELTA[:10]) == b""  # the rest of the event is not there yet
    assert f.feed(DELTA[10:] + USAGE[:5]) == DELTA


def test_a_long_event_is_passed_on_as_it_comes_without_being_held():
    big = chunk({"choices": [{"delta": {"content": "y" * (3 * HOLD_BYTES)}}]})
    f = UsageChunkFilter()
    sent = b""
    step = 4096
    for i in range(0, len(big), step):
        sent += f.feed(big[i : i + step])
        assert len(big[: i + step]) - len(sent) <= HOLD_BYTES + step
    sent += f.feed(USAGE + DONE) + f.flush()
    assert sent == big + DONE


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (USAGE, True),
        (DELTA, False),
        (FINISH, False),
        (DONE, False),
        (chunk({"choices": [], "usage": None}), False),
        (chunk({"choices": [{"index": 0}], "usage": {"prompt_tokens": 1}}), False),
        (b'data: {"usage": {}, "choices": [\n\n', False),
    ],
)
def test_what_counts_as_the_usage_only_chunk(event, expected):
    assert is_usage_only(event) is expected
