"""An incremental text/event-stream parser with bounded memory (pure: no I/O, no Django).

Fed the bytes of a stream as they arrive, in pieces cut anywhere, it yields the events
(WHATWG "server-sent events" rules: CRLF, CR or LF line endings, ":" comments, several
`data:` lines joined with "\\n", a blank line ends an event). Whatever the stream's length,
it keeps at most the current line and the current event, each as a bounded head and tail
window: an event larger than that is delivered truncated, with its last bytes kept,
which is where a usage object sits in the events that carry one.
"""

from __future__ import annotations

from dataclasses import dataclass

# Usage-bearing events are small, except OpenAI's response.completed, which repeats the
# whole answer; its usage comes near the end, so the tail window keeps it.
HEAD_BYTES = 64 * 1024
TAIL_BYTES = 64 * 1024


class BoundedBytes:
    """The first `head_cap` and the last `tail_cap` bytes of whatever is added, and the size."""

    __slots__ = ("head", "tail", "size", "head_cap", "tail_cap", "gap")

    def __init__(self, head_cap: int = HEAD_BYTES, tail_cap: int = TAIL_BYTES):
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0
        self.head_cap = head_cap
        self.tail_cap = tail_cap
        self.gap = False  # bytes were dropped between head and tail

    def add(self, data: bytes) -> None:
        self.size += len(data)
        room = self.head_cap - len(self.head)
        if room > 0 and not self.tail and not self.gap:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.tail_cap
            if excess > 0:
                del self.tail[:excess]
                self.gap = True

    def mark_gap(self) -> None:
        """Record that bytes the caller did not add belong in the middle."""
        self.gap = True

    @property
    def retained(self) -> int:
        return len(self.head) + len(self.tail)

    @property
    def complete(self) -> bool:
        return not self.gap

    def value(self) -> bytes:
        """Everything added (when complete), else head and tail run together."""
        return bytes(self.head + self.tail)

    def clear(self) -> None:
        self.head.clear()
        self.tail.clear()
        self.size = 0
        self.gap = False


@dataclass(frozen=True)
class Event:
    """One dispatched event. `data` is whole unless `truncated`; then `tail` ends it."""

    event: str
    data: bytes
    truncated: bool = False
    tail: bytes = b""


class SSEParser:
    """Bytes in (any split), events out, memory bounded by the line and event windows."""

    def __init__(self, *, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES):
        self._line = BoundedBytes(head_bytes, tail_bytes)  # the unfinished line
        self._data = BoundedBytes(head_bytes, tail_bytes)  # the current event's data
        self._has_data = False
        self._event_type = b""
        self._skip_lf = False  # the last piece ended in CR: an LF next is the same line end
        self._started = False

    @property
    def retained(self) -> int:
        """Bytes held right now (the bound the tests check)."""
        return self._line.retained + self._data.retained + len(self._event_type)

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        if not chunk:
            return events
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if not self._started:
            # A UTF-8 byte order mark may open the stream; it may itself arrive split.
            pending = bytes(self._line.head) + chunk
            if len(pending) < 3 and b"\xef\xbb\xbf".startswith(pending):
                self._line.clear()
                self._line.add(pending)
                return events
            self._started = True
            self._line.clear()
            chunk = pending.removeprefix(b"\xef\xbb\xbf")
        for piece in chunk.splitlines(keepends=True):
            last = piece[-1:]
            if last != b"\n" and last != b"\r":
                self._line.add(piece)  # unfinished: wait for its end
                continue
            content = piece[:-2] if piece.endswith(b"\r\n") else piece[:-1]
            if self._line.size:
                self._line.add(content)
                line = self._line
                self._process_line(
                    line.value(), line.gap, bytes(line.tail) if line.gap else b"", events
                )
                line.clear()
            elif len(content) > self._line.head_cap + self._line.tail_cap:
                window = BoundedBytes(self._line.head_cap, self._line.tail_cap)
                window.add(content)
                self._process_line(window.value(), True, bytes(window.tail), events)
            else:
                self._process_line(content, False, b"", events)
        if chunk.endswith(b"\r"):
            self._skip_lf = True
        return events

    def flush(self) -> list[Event]:
        """At the end of the stream: a last line and event left without their blank line."""
        events: list[Event] = []
        if self._line.size:
            line = self._line
            self._process_line(
                line.value(), line.gap, bytes(line.tail) if line.gap else b"", events
            )
            line.clear()
        self._process_line(b"", False, b"", events)
        return events

    def _process_line(self, line: bytes, truncated: bool, tail: bytes, events: list[Event]) -> None:
        if not line:
            if self._has_data:
                data = self._data
                events.append(
                    Event(
                        event=self._event_type.decode("utf-8", "replace") or "message",
                        data=data.value() if data.complete else bytes(data.head),
                        truncated=not data.complete,
                        tail=b"" if data.complete else bytes(data.tail),
                    )
                )
            self._data.clear()
            self._has_data = False
            self._event_type = b""
            return
        if line[:1] == b":":
            return  # a comment
        name, colon, value = line.partition(b":")
        if not colon:
            name, value = line, b""
        elif value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if self._has_data:
                self._data.add(b"\n")
            self._has_data = True
            if truncated:
                # The line lost its middle: keep its head, mark the gap, then its tail.
                self._data.add(value[: max(0, len(value) - len(tail))])
                self._data.mark_gap()
                self._data.add(tail)
            else:
                self._data.add(value)
        elif name == b"event":
            self._event_type = value[:256]
        # id, retry and unknown fields do not matter for reading usage.
