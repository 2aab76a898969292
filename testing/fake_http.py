"""The fake provider's HTTP/1.1 server side: a raw asyncio Protocol per connection.

Reads heads and bodies (Content-Length or chunked, Expect: 100-continue, keep-alive),
records each request, and plays the answer testing/fake_answers.py built: its pieces
after their delays, then the ending its scenario asks for (done, stall, reset, close).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from testing.fake_answers import build_answer, http_head
from testing.fake_dialects import MAX_BODY_BYTES

if TYPE_CHECKING:
    from testing.fake_provider import FakeProvider

MAX_HEAD_BYTES = 64 * 1024
# A reset or clean close mid-answer waits this long after the first event, so the
# client (or the gateway) has relayed it before the connection ends.
FAULT_PAUSE_SECONDS = 0.05


@dataclass
class Received:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


class Connection(asyncio.Protocol):
    def __init__(self, provider: FakeProvider):
        self.provider = provider
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False  # an answer is being written (or stalls) on this connection
        self.task: asyncio.Task | None = None
        self.gone = False
        self._head = None  # (method, target, version, headers) once the head is read
        self._body = bytearray()
        self._chunk_left = 0
        self._chunk_crlf = False
        self._trailers = False

    def connection_made(self, transport):
        self.transport = transport
        self.provider._connections.add(self)

    def connection_lost(self, exc):
        self.gone = True
        self.provider._connections.discard(self)
        if self.busy:
            self.busy = False
            self.provider._leave()
            self.provider._count_disconnect()
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self._serve()

    def _serve(self) -> None:
        while not self.busy and not self.gone:
            request = self._parse()
            if request is None:
                return
            self._answer(*request)

    def _fail(self, status: int) -> None:
        self.transport.write(http_head(status, [("content-length", "0")], False))
        self.transport.close()
        self.gone = True

    def _parse(self):
        if self._head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD_BYTES:
                    self._fail(431)
                return None
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[: end + 4]
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self._fail(400)
                return None
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._head = (method, target, version, headers)
            self._body = bytearray()
            self._chunk_left, self._chunk_crlf, self._trailers = 0, False, False
            if headers.get("expect", "").lower() == "100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        method, target, version, headers = self._head
        if "chunked" in headers.get("transfer-encoding", "").lower():
            if not self._read_chunked():
                return None
            body = bytes(self._body)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._fail(400)
                return None
            if length > MAX_BODY_BYTES:
                self._fail(413)
                return None
            if len(self.buf) < length:
                return None
            body = bytes(self.buf[:length])
            del self.buf[:length]
        self._head = None
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        return method, target, headers, body, keep_alive

    def _read_chunked(self) -> bool:
        buf = self.buf
        while True:
            if self._chunk_left:
                take = min(self._chunk_left, len(buf))
                self._body += buf[:take]
                del buf[:take]
                self._chunk_left -= take
                if self._chunk_left:
                    return False
                self._chunk_crlf = True
            if self._chunk_crlf:
                if len(buf) < 2:
                    return False
                del buf[:2]
                self._chunk_crlf = False
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._fail(400)
                return False
            line = bytes(buf[:end])
            del buf[: end + 2]
            if self._trailers:
                if not line:
                    return True
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._fail(400)
                return False
            if len(self._body) + size > MAX_BODY_BYTES:
                self._fail(413)
                return False
            if size == 0:
                self._trailers = True
            self._chunk_left = size

    def _answer(self, method, target, headers, body, keep_alive) -> None:
        provider = self.provider
        n = provider._next_number()
        if provider.record:
            provider.requests.append(Received(method, target, headers, body))
        if provider.defaults:
            headers = {**provider.defaults, **headers}
        answer = build_answer(n, method, target, headers, body, keep_alive, provider.models)
        provider._enter()
        # Writes that follow each other without a delay go out as one.
        merged: list[tuple[float, bytes]] = []
        for delay, data in answer.pieces:
            if merged and not delay:
                merged[-1] = (merged[-1][0], merged[-1][1] + data)
            else:
                merged.append((delay, data))
        if answer.ending == "done" and len(merged) <= 1 and not (merged and merged[0][0]):
            if merged:
                self.transport.write(merged[0][1])
            provider._leave()
            if not keep_alive:
                self.transport.close()
                self.gone = True
            return
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(
            self._play(merged, answer.ending, keep_alive)
        )

    async def _play(self, pieces, ending: str, keep_alive: bool) -> None:
        # Delays run on a fixed schedule from the start, so a busy loop does not stretch
        # a 20 x 250 ms stream beyond its natural 5 s (no drift accumulates).
        loop = asyncio.get_running_loop()
        due = loop.time()
        for delay, data in pieces:
            if delay:
                due += delay
                await asyncio.sleep(max(0.0, due - loop.time()))
            if self.gone:
                return
            self.transport.write(data)
        if ending == "stall":
            return  # busy until the client goes away (counted as a disconnect)
        self.busy = False
        self.provider._leave()
        self.task = None
        if ending in ("reset", "close"):
            await asyncio.sleep(FAULT_PAUSE_SECONDS)
            if self.gone:
                return
            self.gone = True
            if ending == "reset":
                sock = self.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.transport.abort()
            else:
                self.transport.close()
            return
        if not keep_alive:
            self.transport.close()
            self.gone = True
            return
        self._serve()
