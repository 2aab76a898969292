"""A lean HTTP/1.1 load generator: asyncio raw protocols, keep-alive, chunked answers, TTFB.

Each virtual client owns one keep-alive connection and sends prebuilt request bytes; the
answer is parsed incrementally (Content-Length or chunked), timing the first byte and the
last. A stream cut short (no final chunk) counts as an error, as does any status but 200.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

perf = time.perf_counter


def build_request(
    method: str, path: str, host: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Outcome:
    ok: bool
    status: int = 0
    ttfb: float = 0.0  # seconds from sending to the first byte of the answer
    latency: float = 0.0  # seconds from sending to the last byte
    error: str = ""
    body: bytes = b""  # kept only when asked (small answers)


class _HTTPClient(asyncio.Protocol):
    """One connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.keep_body = False

    # --- asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.state == "close" and self.status:
                self._finish(True)
            else:
                self._fail(f"connection lost ({exc or 'closed'}) in {self.state}")

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            return
        if self.t_first == 0.0:
            self.t_first = perf()
        self.buf += data
        try:
            self._advance()
        except ValueError as exc:
            self._fail(f"bad answer: {exc}")

    # --- requests
    def send(self, data: bytes, keep_body: bool = False) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.buf.clear()
        self.state = "head"
        self.status = 0
        self.keep_body = keep_body
        self.body = bytearray()
        self.remaining = 0
        self.chunk_crlf = False
        self.server_closes = False
        self.t_first = 0.0
        self.t_sent = perf()
        self.transport.write(data)
        return self.waiter

    def _finish(self, ok: bool, error: str = "") -> None:
        end = perf()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(
                Outcome(
                    ok=ok and self.status == 200,
                    status=self.status,
                    ttfb=(self.t_first or end) - self.t_sent,
                    latency=end - self.t_sent,
                    error=error or ("" if self.status == 200 else f"status {self.status}"),
                    body=bytes(self.body),
                )
            )
        if self.server_closes and self.transport is not None:
            self.transport.close()
            self.closed = True

    def _fail(self, error: str) -> None:
        self.server_closes = True
        self._finish(False, error)

    def _take(self, n: int) -> None:
        if self.keep_body:
            self.body += self.buf[:n]
        del self.buf[:n]

    def _advance(self) -> None:
        buf = self.buf
        while self.waiter is not None:
            if self.state == "head":
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > 65536:
                        raise ValueError("header too large")
                    return
                head = bytes(buf[:end]).decode("latin-1").split("\r\n")
                del buf[: end + 4]
                self.status = int(head[0].split(" ", 2)[1])
                if 100 <= self.status < 200:
                    continue
                length = None
                chunked = False
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "transfer-encoding":
                        chunked = "chunked" in value.lower()
                    elif name == "connection":
                        self.server_closes = "close" in value.lower()
                if chunked:
                    self.state = "size"
                elif length is not None:
                    self.state, self.remaining = "body", length
                elif self.status in (204, 304):
                    self._finish(True)
                    return
                else:
                    self.state, self.server_closes = "close", True
            elif self.state == "body":
                if len(buf) < self.remaining:
                    self.remaining -= len(buf)
                    self._take(len(buf))
                    return
                self._take(self.remaining)
                self._finish(True)
                return
            elif self.state == "size":
                if self.chunk_crlf:
                    if len(buf) < 2:
                        return
                    del buf[:2]
                    self.chunk_crlf = False
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                del buf[: end + 2]
                if size == 0:
                    self.state = "trailers"
                else:
                    self.state, self.remaining = "chunk", size
            elif self.state == "chunk":
                take = min(self.remaining, len(buf))
                self._take(take)
                self.remaining -= take
                if self.remaining:
                    return
                self.state, self.chunk_crlf = "size", True
            elif self.state == "trailers":
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if not line:
                    self._finish(True)
                    return
            elif self.state == "close":
                self._take(len(buf))
                return


class Connection:
    """A keep-alive connection that reopens itself when the server closed it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.proto: _HTTPClient | None = None

    async def _ensure(self) -> _HTTPClient:
        if self.proto is None or self.proto.closed:
            loop = asyncio.get_running_loop()
            _, self.proto = await loop.create_connection(_HTTPClient, self.host, self.port)
        return self.proto

    async def call(self, data: bytes, *, timeout: float = 30.0, keep_body: bool = False) -> Outcome:
        started = perf()
        try:
            proto = await self._ensure()
        except OSError as exc:
            return Outcome(False, error=f"connect: {exc}", latency=perf() - started)
        waiter = proto.send(data, keep_body)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            self.close()
            return Outcome(False, error="timeout", latency=perf() - started)

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.abort()
        self.proto = None


@dataclass
class Series:
    """The outcomes of one measured case."""

    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    peak_open: int = 0  # most requests in flight at once (burst)

    def add(self, outcome: Outcome) -> None:
        if outcome.ok:
            self.latencies.append(outcome.latency)
            self.ttfbs.append(outcome.ttfb)
        else:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(outcome.error)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


async def sequential(
    targets: dict[str, tuple[str, int, bytes]], n: int, warmup: int
) -> dict[str, Series]:
    """Interleaved rounds: one call to each target in turn, n rounds, one connection each."""
    conns = {name: Connection(host, port) for name, (host, port, _) in targets.items()}
    series = {name: Series() for name in targets}
    for round_ in range(warmup + n):
        for name, (_, _, data) in targets.items():
            outcome = await conns[name].call(data)
            if round_ >= warmup:
                series[name].add(outcome)
    for conn in conns.values():
        conn.close()
    return series


async def concurrent(
    host: str, port: int, data: bytes, *, concurrency: int, duration: float, timeout: float = 30.0
) -> Series:
    """`concurrency` clients, each calling back to back on its own connection, for `duration`."""
    series = Series()
    deadline = perf() + duration

    async def client() -> None:
        conn = Connection(host, port)
        while perf() < deadline:
            series.add(await conn.call(data, timeout=timeout))
        conn.close()

    started = perf()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    series.elapsed = perf() - started
    return series


async def burst(
    host: str, port: int, data: bytes, *, count: int, timeout: float, ramp: float = 0.0
) -> Series:
    """`count` requests, each on its own connection, launched evenly over `ramp` seconds.

    With a ramp shorter than a stream's life, all `count` streams are open together at
    its end; the ramp keeps the measure about holding streams rather than about queueing
    a thousand requests that arrive in the same millisecond.
    """
    series = Series()
    conns = [Connection(host, port) for _ in range(count)]
    # Each client connects when it starts, as real ones do: connecting all of them
    # first would hand most of them to whichever worker happens to accept first.
    started = perf()
    tasks = []
    open_now = 0

    async def one(conn: Connection) -> Outcome:
        nonlocal open_now
        open_now += 1
        series.peak_open = max(series.peak_open, open_now)
        try:
            return await conn.call(data, timeout=timeout)
        finally:
            open_now -= 1

    for i, conn in enumerate(conns):
        tasks.append(asyncio.create_task(one(conn)))
        # Yield after each send, so answers are read (and timed) as they arrive rather
        # than after the last request went out.
        await asyncio.sleep(max(0.0, started + ramp * (i + 1) / count - perf()))
    outcomes = await asyncio.gather(*tasks)
    series.elapsed = perf() - started
    for outcome in outcomes:
        series.add(outcome)
    for conn in conns:
        conn.close()
    return series
