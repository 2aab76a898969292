"""The event-stream parser: every split, every line ending, bounded memory."""

from __future__ import annotations

import tracemalloc

import pytest

from proxy.sse import HEAD_BYTES, TAIL_BYTES, BoundedBytes, Event, SSEParser


def parse(pieces) -> list[tuple[str, bytes]]:
    parser = SSEParser()
    events: list[Event] = []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.flush()
    return [(e.event, e.data) for e in events]


def with_endings(stream: bytes, ending: bytes) -> bytes:
    return stream.replace(b"\n", ending)


CASES = [
    ("one event", b"data: hello\n\n", [("message", b"hello")]),
    ("named event", b"event: ping\ndata: {}\n\n", [("ping", b"{}")]),
    ("no space after colon", b"data:x\n\n", [("message", b"x")]),
    ("only the first space goes", b"data:  two\n\n", [("message", b" two")]),
    ("multi-line data", b"data: a\ndata: b\ndata:\n\n", [("message", b"a\nb\n")]),
    (
        "comments and unknown fields",
        b": keep-alive\nid: 7\nretry: 5\nfoo\ndata: x\n\n",
        [("message", b"x")],
    ),
    ("event without data is not dispatched", b"event: lonely\n\ndata: y\n\n", [("message", b"y")]),
    (
        "the event name resets",
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        [("a", b"1"), ("message", b"2")],
    ),
    ("a colon in the value stays", b'data: {"a":"b:c"}\n\n', [("message", b'{"a":"b:c"}')]),
    ("blank lines between events", b"\n\n\ndata: z\n\n\n\n", [("message", b"z")]),
    ("junk lines are ignored", b"garbage here\n\x00\xff\xfe\ndata: ok\n\n", [("message", b"ok")]),
    ("[DONE] is data", b"data: [DONE]\n\n", [("message", b"[DONE]")]),
    (
        "last event without its blank line",
        b"data: a\n\ndata: tail",
        [("message", b"a"), ("message", b"tail")],
    ),
    ("byte order mark", b"\xef\xbb\xbfdata: bom\n\n", [("message", b"bom")]),
    ("two events", b"event: x\ndata: 1\n\nevent: y\ndata: 2\n\n", [("x", b"1"), ("y", b"2")]),
]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize(("name", "stream", "expected"), CASES, ids=[c[0] for c in CASES])
def test_events_are_the_same_however_the_stream_is_cut(name, stream, expected, ending):
    stream = with_endings(stream, ending)
    # Multi-line data joins with "\n" whatever the stream's line endings.
    assert parse([stream]) == expected
    for cut in range(len(stream) + 1):
        assert parse([stream[:cut], stream[cut:]]) == expected, f"cut at {cut}"
    assert parse([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_every_pair_of_cuts_in_a_crlf_stream():
    stream = b'event: message_start\r\ndata: {"a": 1}\r\n\r\n: c\r\ndata: 2\r\n\r\n'
    expected = [("message_start", b'{"a": 1}'), ("message", b"2")]
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            assert parse([stream[:i], stream[i:j], stream[j:]]) == expected, (i, j)


def test_cr_then_lf_in_the_next_piece_is_one_line_end():
    assert parse([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [("message", b"a\nb")]


def test_mixed_line_endings_in_one_stream():
    assert parse([b"data: a\r\ndata: b\rdata: c\n\r\n"]) == [("message", b"a\nb\nc")]


def test_a_huge_event_keeps_its_head_and_its_tail():
    parser = SSEParser()
    body = b"H" * 100 + b"m" * (5 * 1024 * 1024) + b"T" * 100
    events = []
    for start in range(0, len(body), 10_000):
        events += parser.feed((b"data: " if start == 0 else b"") + body[start : start + 10_000])
        assert parser.retained <= HEAD_BYTES + TAIL_BYTES + 64
    events += parser.feed(b"\n\ndata: next\n\n")
    assert [e.truncated for e in events] == [True, False]
    assert events[0].data.startswith(b"H" * 100) and len(events[0].data) <= HEAD_BYTES
    assert events[0].tail.endswith(b"T" * 100) and len(events[0].tail) <= TAIL_BYTES
    assert events[1].data == b"next"


def test_a_huge_line_inside_one_piece_is_bounded_too():
    events = SSEParser().feed(b"data: " + b"x" * (3 * HEAD_BYTES) + b"END\n\n")
    assert events[0].truncated and events[0].tail.endswith(b"END")
    assert len(events[0].data) + len(events[0].tail) <= HEAD_BYTES + TAIL_BYTES


def test_a_500_mb_stream_holds_bounded_memory():
    """500 MB of one endless data line, fed in 64 KiB pieces: the parser keeps two windows."""
    piece = b"y" * (64 * 1024)
    parser = SSEParser()
    tracemalloc.start()
    try:
        parser.feed(b"event: response.completed\ndata: ")
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(500 * 1024 * 1024 // len(piece)):
            parser.feed(piece)
        assert parser.retained <= HEAD_BYTES + TAIL_BYTES + 64
        events = parser.feed(b'"usage":{"input_tokens":3}}\n\n')
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 2 * 1024 * 1024
    assert events[0].event == "response.completed" and events[0].tail.endswith(
        b'"input_tokens":3}}'
    )


def test_many_ordinary_events_do_not_accumulate():
    parser = SSEParser()
    event = b'data: {"choices":[{"delta":{"content":"abc"}}]}\n\n'
    batch = event * 500
    count = 0
    for _ in range(200):  # 100,000 events, about 5 MB
        count += len(parser.feed(batch))
        assert parser.retained < 1024
    assert count == 100_000


@pytest.mark.parametrize(
    ("pieces", "head", "tail", "complete"),
    [
        ([b"abc"], b"abc", b"", True),
        ([b"abcdef"], b"abcd", b"ef", True),
        ([b"ab", b"cd", b"ef", b"gh"], b"abcd", b"efgh", True),
        ([b"abcd", b"efghij"], b"abcd", b"ghij", False),
    ],
)
def test_bounded_bytes_windows(pieces, head, tail, complete):
    window = BoundedBytes(4, 4)
    for piece in pieces:
        window.add(piece)
    assert (bytes(window.head), bytes(window.tail), window.complete) == (head, tail, complete)
    assert window.size == sum(map(len, pieces))
