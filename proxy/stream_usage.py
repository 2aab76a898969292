"""Usage for every OpenAI chat stream (pure: no I/O, no Django).

A chat completion stream reports its usage only when the request asks for it
(`stream_options.include_usage: true`), and most SDK users never do. When the client
did not, the gateway asks for it (`with_stream_usage`) and removes the one chunk this
adds from what the client receives (`UsageChunkFilter`): an event whose `choices` is
empty and whose `usage` is an object. Every other byte is passed on unchanged and in
order; the filter only holds back the bytes of the event it is in the middle of, so
the client still gets each event as soon as the gateway has all of it.
"""

from __future__ import annotations

import json
import re

# Request bodies up to this size are parsed to add the option; a larger one (a big
# prompt) gets the option spliced in after its opening brace when it has none.
PARSE_BYTES = 1024 * 1024
# The usage-only chunk is a few hundred bytes: an event already longer than this is
# passed on as it comes instead of being held back.
HOLD_BYTES = 16 * 1024
_OPENING = re.compile(rb"\s*\{\s*")
_OPTION = b'"stream_options":{"include_usage":true}'


def asks_for_usage(obj: dict) -> bool:
    options = obj.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def with_stream_usage(body: bytes) -> bytes | None:
    """The body with `stream_options.include_usage: true`, or None to send it unchanged.

    None when the client asked for usage itself (it then gets the stream exactly as
    sent), or when the body is not a JSON object that can be changed safely.
    """
    opening = _OPENING.match(body)
    if opening is None:
        return None
    if len(body) > PARSE_BYTES:
        if b'"stream_options"' in body:
            return None  # too big to parse, and not safe to splice into
        return _splice(body, opening.end())
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or asks_for_usage(obj):
        return None
    if "stream_options" not in obj:
        return _splice(body, opening.end())
    # The client set stream_options without include_usage (or with false): the body is
    # written anew, keeping its other options.
    options = obj["stream_options"] if isinstance(obj["stream_options"], dict) else {}
    obj["stream_options"] = {**options, "include_usage": True}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _splice(body: bytes, at: int) -> bytes:
    # Right after "{": the rest of the body, bytes and key order, stays as the client wrote it.
    separator = b"" if body[at : at + 1] == b"}" else b","
    return body[:at] + _OPTION + separator + body[at:]


def _event_end(data: bytes | bytearray, *, at_line_start: bool = True) -> int:
    """The index just past the blank line that ends the first event in data, or -1.

    at_line_start: whether data[0] begins a line (False when the bytes before it, already
    sent on, ended mid-line).
    """
    line_start = 0 if at_line_start else -1
    i = 0
    size = len(data)
    while i < size:
        lf = data.find(b"\n", i)
        cr = data.find(b"\r", i)
        if lf < 0 and cr < 0:
            return -1
        at = lf if cr < 0 or (0 <= lf < cr) else cr
        if data[at] == 0x0D:  # CR: CRLF, or CR alone; at the very end we cannot know yet
            if at + 1 == size:
                return -1
            width = 2 if data[at + 1] == 0x0A else 1
        else:
            width = 1
        if at == line_start:
            return at + width
        line_start = i = at + width
    return -1


def is_usage_only(event: bytes) -> bool:
    """Whether an event is the chunk include_usage adds: no choices, a usage object."""
    if b'"usage"' not in event:
        return False
    data = [line[5:].removeprefix(b" ") for line in event.splitlines() if line.startswith(b"data:")]
    try:
        obj = json.loads(b"\n".join(data))
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and obj.get("choices") == [] and isinstance(obj.get("usage"), dict)


class UsageChunkFilter:
    """Passes an event stream on unchanged except for the first usage-only event."""

    def __init__(self) -> None:
        self._held = bytearray()
        self._passing = False  # in an event too long to be the usage chunk
        self._at_line_start = True  # whether the held bytes begin a line
        self._dropped = False

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send on now (possibly none) for this piece of the stream."""
        if self._dropped:
            return chunk
        self._held += chunk
        out = bytearray()
        while True:
            end = _event_end(self._held, at_line_start=self._at_line_start)
            if end < 0:
                break
            event = bytes(self._held[:end])
            del self._held[:end]
            if not self._passing and not self._dropped and is_usage_only(event):
                self._dropped = True
            else:
                out += event
            self._passing = False
            self._at_line_start = True
            if self._dropped:
                out += self._held
                self._held.clear()
                break
        if len(self._held) > HOLD_BYTES:
            # Send all but the last byte on; never split a CR from the LF that may follow.
            cut = len(self._held) - 1
            if self._held[cut - 1] == 0x0D:
                cut -= 1
            self._passing = True
            self._at_line_start = self._held[cut - 1] in (0x0A, 0x0D)
            out += self._held[:cut]
            del self._held[:cut]
        return bytes(out)

    def flush(self) -> bytes:
        """At the stream's clean end: whatever is still held back (an unfinished last event)."""
        rest = bytes(self._held)
        self._held.clear()
        return rest
