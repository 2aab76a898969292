"""Relaying an upstream answer to the client as it arrives, and ending it exactly once.

The WSGI server iterates a Relay and calls its close() when it is done with it,
whether the answer ended, failed, or the client went away. Every path through
here calls `on_end` exactly once, with what the log row needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.http import StreamingHttpResponse

from proxy.errors import StreamBroken
from proxy.forward import UpstreamAnswer
from proxy.usage import Usage

logger = logging.getLogger(__name__)

CLIENT_GONE = "client disconnected"


@dataclass
class Ending:
    """How an answer ended, for its log row."""

    status: int
    error: str
    duration_ms: int
    ttfb_ms: int | None
    usage: Usage = field(default_factory=Usage)


class UsageFeed:
    """Feeds the bytes the client receives to a usage reader, on the side.

    A failure of the reader never touches the stream: it is logged once and the
    usage stays unknown (null), never zero.
    """

    def __init__(self, reader, *, request_id: object):
        self._reader = reader
        self._request_id = request_id

    def feed(self, chunk: bytes) -> None:
        if self._reader is None:
            return
        try:
            self._reader.feed(chunk)
        except Exception:
            self._give_up()

    def result(self) -> Usage:
        if self._reader is None:
            return Usage()
        try:
            return self._reader.result()
        except Exception:
            self._give_up()
            return Usage()

    def _give_up(self) -> None:
        logger.warning(
            "usage reading failed for request %s; its usage stays unknown",
            self._request_id,
            exc_info=True,
        )
        self._reader = None


class Relay:
    """The body of a proxied answer: an iterator of the upstream's chunks, with close().

    - Chunks are yielded as they arrive (a read returns what is there; nothing is
      buffered), so an event stream reaches the client event by event.
    - The upstream's timeout bounds each silence (the socket's read timeout); the
      whole answer ends at `deadline` (PROXY_MAX_STREAM_SECONDS after the request).
    - A stream cut short finishes the row, then ends the client's connection without a
      clean end: through `drop_client` (a socket shutdown) when the server offers the
      socket, else by raising StreamBroken out of the iterator, which has the server
      drop it.
    - close() before the end means the client went away: the upstream connection is
      closed at once and the row finished with CLIENT_GONE.
    """

    def __init__(
        self,
        *,
        answer: UpstreamAnswer,
        usage: UsageFeed,
        started: float,
        headers_at: float,
        read_timeout: float,
        deadline: float,
        on_end: Callable[[Ending], None],
        drop_client: Callable[[], None] | None = None,
        request_id: object = "",
        chunk_filter=None,
    ):
        self._answer = answer
        self._drop_client = drop_client
        self._request_id = request_id
        self._usage = usage
        self._started = started
        self._headers_at = headers_at
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._on_end = on_end
        # proxy.stream_usage.UsageChunkFilter when the gateway asked for stream usage itself.
        self._chunk_filter = chunk_filter
        self._first_byte_at: float | None = None
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        # Sending the headers before reading on means a failure from here on is an
        # abrupt end of a started answer, never an error page in its place.
        yield b""
        try:
            while True:
                chunk = self._next_chunk()
                if not chunk:
                    break
                if self._first_byte_at is None:
                    self._first_byte_at = time.monotonic()
                self._usage.feed(chunk)
                if self._chunk_filter is not None:
                    chunk = self._chunk_filter.feed(chunk)
                    if not chunk:
                        continue
                yield chunk
            if self._chunk_filter is not None and (rest := self._chunk_filter.flush()):
                yield rest
        except StreamBroken as exc:
            self._close_upstream()
            self._end(error=f"stream cut short: {exc}")
            if not self._dropped_client(exc):
                raise
            return
        except GeneratorExit:
            raise  # the server is done with us; close() finishes the row
        except BaseException as exc:
            self._close_upstream()
            self._end(error=f"gateway error while relaying ({type(exc).__name__})")
            raise
        self._end(error="")

    def _next_chunk(self) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise StreamBroken("the answer took longer than the gateway allows", "too_long")
        if remaining < self._read_timeout:
            self._answer.limit_next_wait(remaining)
        try:
            return self._answer.read_chunk()
        except StreamBroken as exc:
            if exc.kind == "timeout" and time.monotonic() >= self._deadline - 0.005:
                raise StreamBroken(
                    "the answer took longer than the gateway allows", "too_long"
                ) from None
            if exc.kind == "timeout":
                raise StreamBroken(
                    f"the upstream sent nothing for {self._read_timeout:g} seconds", "timeout"
                ) from None
            raise

    def _dropped_client(self, exc: StreamBroken) -> bool:
        """Drop the client's connection ourselves, if the server lets us; True when done.

        Raising out of the iterator does the same (the server drops a connection whose
        answer failed midway) but has it log an error with a traceback, for what is the
        upstream's failure, not ours: one warning line says it better.
        """
        if self._drop_client is None:
            return False
        try:
            self._drop_client()
        except OSError:
            return False
        logger.warning(
            "request %s: stream cut short (%s); the client's connection was dropped",
            self._request_id,
            exc,
        )
        return True

    def close(self) -> None:
        if self._ended:
            return
        self._close_upstream()
        self._end(error=CLIENT_GONE)

    def _close_upstream(self) -> None:
        try:
            self._answer.close()
        except Exception:
            logger.warning("closing an upstream connection failed", exc_info=True)

    def _end(self, *, error: str) -> None:
        if self._ended:
            return
        self._ended = True
        now = time.monotonic()
        first = self._first_byte_at or self._headers_at
        self._on_end(
            Ending(
                status=self._answer.status,
                error=error,
                duration_ms=round((now - self._started) * 1000),
                ttfb_ms=round((first - self._started) * 1000),
                usage=self._usage.result(),
            )
        )


class ProxiedResponse(StreamingHttpResponse):
    """A streamed answer that keeps the upstream's repeated headers (several Set-Cookie
    lines, say), which Django's one-value-per-name header map cannot hold."""

    def __init__(self, relay: Relay, *, status: int, reason: str | None, headers):
        super().__init__(relay, status=status, reason=reason or None)
        del self.headers["Content-Type"]  # Django's default; the upstream's (if any) is set below
        self.repeated_headers: list[tuple[str, str]] = []
        for name, value in headers:
            if name in self.headers:
                self.repeated_headers.append((name, value))
            else:
                self.headers[name] = value

    def items(self):
        return [*super().items(), *self.repeated_headers]
