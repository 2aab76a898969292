"""Usage read from JSON bodies and event streams."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.usage import Usage, usage_reader

JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"
UNKNOWN = Usage()


def read(content_type: str, dialect: str, pieces, content_encoding: str = "") -> Usage:
    reader = usage_reader(
        content_type=content_type, dialect=dialect, content_encoding=content_encoding
    )
    for piece in pieces:
        reader.feed(piece)
    return reader.result()


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()


def sse(*events: tuple[str | None, object]) -> bytes:
    out = b""
    for name, data in events:
        if name:
            out += b"event: " + name.encode() + b"\n"
        out += b"data: " + (data if isinstance(data, bytes) else dumps(data)) + b"\n\n"
    return out


# --- JSON bodies -----------------------------------------------------------------------

CHAT_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
}
JSON_CASES = [
    (
        "chat",
        "openai",
        {"object": "chat.completion", "usage": CHAT_USAGE},
        Usage(120, 30, 150, 100, None),
    ),
    (
        "chat without details",
        "openai",
        {"usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
        Usage(5, 2, 7, None, None),
    ),
    (
        "chat without total",
        "openai",
        {"usage": {"prompt_tokens": 5, "completion_tokens": 2}},
        Usage(5, 2, 7, None, None),
    ),
    (
        "responses",
        "openai",
        {
            "object": "response",
            "usage": {
                "input_tokens": 40,
                "input_tokens_details": {"cached_tokens": 8},
                "output_tokens": 9,
                "output_tokens_details": {"reasoning_tokens": 4},
                "total_tokens": 49,
            },
        },
        Usage(40, 9, 49, 8, None),
    ),
    (
        "anthropic with cache",
        "anthropic",
        {
            "type": "message",
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 3000,
                "output_tokens": 50,
            },
        },
        Usage(10, 50, 3260, 3000, 200),
    ),
    (
        "anthropic without cache fields",
        "anthropic",
        {"type": "message", "usage": {"input_tokens": 10, "output_tokens": 5}},
        Usage(10, 5, 15, None, None),
    ),
    (
        "anthropic shape through an openai upstream",
        "openai",
        {"usage": {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 4}},
        Usage(1, 2, 7, 4, None),
    ),
    (
        "error body",
        "openai",
        {"error": {"message": "nope", "type": "invalid_request_error"}},
        UNKNOWN,
    ),
    (
        "anthropic error",
        "anthropic",
        {"type": "error", "error": {"type": "overloaded_error"}},
        UNKNOWN,
    ),
    ("usage null", "openai", {"usage": None}, UNKNOWN),
    ("usage not an object", "openai", {"usage": "lots"}, UNKNOWN),
    ("usage empty", "openai", {"usage": {}}, UNKNOWN),
    ("not an object", "openai", [1, 2, 3], UNKNOWN),
    (
        "insane counts stay unknown",
        "openai",
        {"usage": {"prompt_tokens": -1, "completion_tokens": True, "total_tokens": 2**40}},
        UNKNOWN,
    ),
    (
        "string counts stay unknown",
        "anthropic",
        {"usage": {"input_tokens": "10", "output_tokens": 3.0}},
        UNKNOWN,
    ),
    (
        "one count missing",
        "openai",
        {"usage": {"prompt_tokens": 4}},
        Usage(4, None, None, None, None),
    ),
]


@pytest.mark.parametrize(
    ("name", "dialect", "body", "expected"), JSON_CASES, ids=[c[0] for c in JSON_CASES]
)
def test_json_usage_whole_and_split_at_every_byte(name, dialect, body, expected):
    raw = dumps(body)
    assert read(JSON, dialect, [raw]) == expected
    for cut in range(len(raw) + 1):
        assert read(JSON, dialect, [raw[:cut], raw[cut:]]) == expected, f"cut at {cut}"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"usage": {"prompt_tokens": 1',
    ],
    ids=["empty", "open brace", "text", "non-utf8", "deeply nested", "cut short"],
)
def test_unreadable_json_is_unknown(raw):
    assert read(JSON, "openai", [raw]) == UNKNOWN


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/problem+json",
    ],
)
def test_json_content_types(content_type):
    assert read(content_type, "openai", [dumps({"usage": CHAT_USAGE})]).total_tokens == 150


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/html", "application/octet-stream", ""]
)
def test_other_content_types_are_unknown(content_type):
    assert read(content_type, "openai", [dumps({"usage": CHAT_USAGE})]) == UNKNOWN


def big_json(size: int, *, decoy: bool = False) -> bytes:
    text = "x" * size
    if decoy:
        # Text that looks like usage, escaped inside a string near the end: not the key.
        text += '"usage": {"prompt_tokens": 999, "completion_tokens": 999}'
    body = {
        "id": "chatcmpl-1",
        "choices": [{"message": {"content": text}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 70000, "total_tokens": 70007},
    }
    return dumps(body)


@pytest.mark.parametrize("decoy", [False, True])
def test_usage_at_the_end_of_a_body_larger_than_the_window(decoy):
    raw = big_json(1024 * 1024, decoy=decoy)
    pieces = [raw[i : i + 8192] for i in range(0, len(raw), 8192)]
    assert read(JSON, "openai", pieces) == Usage(7, 70000, 70007, None, None)


def test_a_large_body_without_usage_is_unknown():
    raw = dumps({"choices": [{"message": {"content": "x" * 500_000}}]})
    assert read(JSON, "openai", [raw]) == UNKNOWN


def test_a_500_mb_json_answer_keeps_bounded_windows():
    reader = usage_reader(content_type=JSON, dialect="anthropic")
    reader.feed(b'{"type":"message","content":[{"type":"text","text":"')
    piece = b"z" * (64 * 1024)
    for _ in range(500 * 1024 * 1024 // len(piece)):
        reader.feed(piece)
        assert reader.retained <= 128 * 1024
    reader.feed(b'"}],"usage":{"input_tokens":9,"cache_read_input_tokens":1,"output_tokens":2}}')
    assert reader.result() == Usage(9, 2, 12, 1, None)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("GZIP", gzip.compress),
    ],
)
def test_compressed_json_is_read_on_the_side(encoding, compress):
    raw = compress(dumps({"usage": CHAT_USAGE}))
    for cut in range(len(raw) + 1):
        assert read(JSON, "openai", [raw[:cut], raw[cut:]], encoding).total_tokens == 150


def test_a_large_gzip_body_is_inflated_step_by_step():
    raw = gzip.compress(big_json(3 * 1024 * 1024))
    pieces = [raw[i : i + 4096] for i in range(0, len(raw), 4096)]
    assert read(JSON, "openai", pieces, "gzip").total_tokens == 70007


@pytest.mark.parametrize(
    ("encoding", "raw"), [("gzip", b"not gzip at all"), ("br", b"\x1b\x00"), ("zstd", b"")]
)
def test_unreadable_encodings_are_unknown(encoding, raw):
    assert read(JSON, "openai", [raw], encoding) == UNKNOWN


# --- event streams ---------------------------------------------------------------------


def chat_chunk(content=None, *, usage="absent", finish=None, choices=True):
    obj = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt"}
    obj["choices"] = (
        [{"index": 0, "delta": {"content": content}, "finish_reason": finish}] if choices else []
    )
    if usage != "absent":
        obj["usage"] = usage
    return obj


CHAT_STREAM = sse(
    (None, chat_chunk("Hel", usage=None)),
    (None, chat_chunk("lo", usage=None)),
    (None, chat_chunk(None, usage=None, finish="stop")),
    (None, chat_chunk(usage=CHAT_USAGE, choices=False)),
    (None, b"[DONE]"),
)
CHAT_STREAM_NO_USAGE = sse(
    (None, chat_chunk("Hi")), (None, chat_chunk(None, finish="stop")), (None, b"[DONE]")
)
RESPONSE_USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 2},
    "output_tokens": 3,
    "total_tokens": 15,
}
RESPONSES_STREAM = sse(
    ("response.created", {"type": "response.created", "response": {"id": "r", "usage": None}}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "usage"}),
    (
        "response.completed",
        {
            "type": "response.completed",
            "response": {"id": "r", "output": [], "usage": RESPONSE_USAGE},
        },
    ),
)
ANTHROPIC_START = {
    "type": "message_start",
    "message": {
        "id": "m",
        "type": "message",
        "usage": {
            "input_tokens": 25,
            "cache_creation_input_tokens": 10,
            "cache_read_input_tokens": 500,
            "output_tokens": 1,
        },
    },
}
ANTHROPIC_BODY = [
    ("message_start", ANTHROPIC_START),
    ("content_block_start", {"type": "content_block_start", "index": 0}),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "usage"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
]
ANTHROPIC_STREAM = sse(
    *ANTHROPIC_BODY,
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 42},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
)
ANTHROPIC_CUT_BEFORE_DELTA = sse(*ANTHROPIC_BODY)
ANTHROPIC_TWO_DELTAS = sse(
    ("message_start", ANTHROPIC_START),
    ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 5}}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "usage": {"output_tokens": 9, "input_tokens": 30, "cache_read_input_tokens": None},
        },
    ),
)
NOISY_STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b"garbage line\n"
    b"data: {not json}\n\n"
    b"data: 12\n\n"
    b'data: {"usage": "nope"}\n\n'
    b'data: {"choices": [], "usage":\n'
    b'data: {"prompt_tokens": 3, "completion_tokens": 4}}\n\n'
    b"data: [DONE]\n\n"
)

SSE_CASES = [
    ("chat final usage chunk", "openai", CHAT_STREAM, Usage(120, 30, 150, 100, None)),
    ("chat without include_usage", "openai", CHAT_STREAM_NO_USAGE, UNKNOWN),
    ("responses completed", "openai", RESPONSES_STREAM, Usage(12, 3, 15, 2, None)),
    ("anthropic start and delta", "anthropic", ANTHROPIC_STREAM, Usage(25, 42, 577, 500, 10)),
    (
        "anthropic cut before message_delta",
        "anthropic",
        ANTHROPIC_CUT_BEFORE_DELTA,
        Usage(25, None, None, 500, 10),
    ),
    ("anthropic last delta wins", "anthropic", ANTHROPIC_TWO_DELTAS, Usage(30, 9, 549, 500, 10)),
    ("comments, junk, multi-line data", "openai", NOISY_STREAM, Usage(3, 4, 7, None, None)),
    ("empty stream", "openai", b"", UNKNOWN),
    ("only keep-alives", "anthropic", b": ping\n\n: ping\n\n", UNKNOWN),
]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize(
    ("name", "dialect", "stream", "expected"), SSE_CASES, ids=[c[0] for c in SSE_CASES]
)
def test_stream_usage_split_at_every_byte(name, dialect, stream, expected, ending):
    stream = stream.replace(b"\n", ending)
    assert read(SSE, dialect, [stream]) == expected
    for cut in range(len(stream) + 1):
        assert read(SSE, dialect, [stream[:cut], stream[cut:]]) == expected, f"cut at {cut}"
    assert read(SSE, dialect, [stream[i : i + 1] for i in range(len(stream))]) == expected


def test_a_response_completed_event_larger_than_the_window():
    text = "w" * (2 * 1024 * 1024)
    completed = {
        "type": "response.completed",
        "response": {"id": "r", "output": [{"content": [{"text": text}]}], "usage": RESPONSE_USAGE},
    }
    stream = sse(("response.completed", completed))
    pieces = [stream[i : i + 16384] for i in range(0, len(stream), 16384)]
    assert read(SSE, "openai", pieces) == Usage(12, 3, 15, 2, None)


def test_a_500_mb_stream_keeps_bounded_memory():
    reader = usage_reader(content_type=SSE, dialect="openai")
    event = sse((None, chat_chunk("x" * 8000, usage=None)))
    piece = event * (64 * 1024 // len(event))
    fed = 0
    while fed < 500 * 1024 * 1024:
        reader.feed(piece)
        fed += len(piece)
        assert reader.retained < 16384
    reader.feed(sse((None, chat_chunk(usage=CHAT_USAGE, choices=False))))
    assert reader.result().total_tokens == 150


def test_a_gzip_stream_is_read_on_the_side():
    raw = gzip.compress(ANTHROPIC_STREAM)
    assert read(SSE, "anthropic", [raw[:50], raw[50:]], "gzip") == Usage(25, 42, 577, 500, 10)


def test_log_fields_match_log_finish():
    import inspect

    from logs.services import log_finish

    fields = Usage(1, 2, 3, 4, 5).as_log_fields()
    assert fields == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "cache_read_tokens": 4,
        "cache_write_tokens": 5,
    }
    assert set(fields) <= set(inspect.signature(log_finish).parameters)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([JSON, SSE]),
    st.sampled_from(["openai", "anthropic"]),
    st.sampled_from(["", "gzip"]),
    st.lists(st.binary(max_size=200), max_size=8),
)
def test_readers_never_raise(content_type, dialect, encoding, pieces):
    result = read(content_type, dialect, pieces, encoding)
    assert isinstance(result, Usage)
