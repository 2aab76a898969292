"""A fast fake LLM provider (OpenAI and Anthropic dialects) for the tests and the benchmark.

Pure stdlib: one asyncio loop with a raw Protocol, HTTP/1.1 keep-alive, request bodies
with Content-Length or chunked. Answers are built in memory and written in one call
unless a delay or a fault asks otherwise, so a single process serves many thousands of
requests a second and never becomes the benchmark's bottleneck.

    fp = FakeProvider(host="127.0.0.1", port=0).start()   # background thread, own loop
    fp.base_url, fp.requests, fp.disconnects, fp.wait_for_disconnects(1), fp.stop()
    fp.max_in_flight: the most answers it was writing at once since clear()

    python bench/fake_provider.py --port 9100 [--processes 2]   # for the benchmark

Endpoints: POST /v1/chat/completions, /v1/responses, /v1/messages (JSON, or SSE when the
body says "stream": true), GET /v1/models; anything else 404 in the provider's shape.
A POST body that is not a JSON object gets a 400 invalid_request_error, as real providers do.

Controls (request headers, all optional): x-fake-chunks (3), x-fake-chunk-delay-ms (0,
before each text delta), x-fake-status (error answer; 429 adds retry-after: 7),
x-fake-scenario (stall-headers, stall-mid, reset-mid, close-mid, big, gzip, echo),
x-fake-size (for big; 1 MiB), x-fake-prompt-tokens (11), x-fake-completion-tokens
(= chunks), x-fake-cache-read (0), x-fake-cache-write (0).

Per provider (several fakes as several upstreams): FakeProvider(defaults={"x-fake-status":
"503"}) answers every request 503 (GET /v1/models too), defaults={"x-fake-chunk-delay-ms":
"300"} is a slow one, models=("gpt-a", "gpt-b") is what its GET /v1/models lists; a
refused connection is simply a free port nobody listens on. GET /v1/files answers an
empty list (a GET the gateway forwards, for query-string tests).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024
# A reset or clean close mid-answer waits this long after the first event, so the
# client (or the gateway) has relayed it before the connection ends.
FAULT_PAUSE_SECONDS = 0.05

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"


@dataclass
class Received:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


@dataclass
class _Controls:
    chunks: int
    delay: float
    status: int
    scenario: str
    size: int
    prompt: int
    completion: int
    cache_read: int
    cache_write: int

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> _Controls:
        def number(name: str, default: int) -> int:
            try:
                return max(0, int(headers.get(name, default)))
            except ValueError:
                return default

        chunks = min(number("x-fake-chunks", 3), 100_000)
        return cls(
            chunks=chunks,
            delay=number("x-fake-chunk-delay-ms", 0) / 1000,
            status=number("x-fake-status", 0),
            scenario=headers.get("x-fake-scenario", "").strip().lower(),
            size=min(number("x-fake-size", 1024 * 1024), MAX_BODY_BYTES),
            prompt=number("x-fake-prompt-tokens", 11),
            completion=number("x-fake-completion-tokens", chunks),
            cache_read=number("x-fake-cache-read", 0),
            cache_write=number("x-fake-cache-write", 0),
        )

    def texts(self) -> list[str]:
        return [f"chunk-{i} " for i in range(self.chunks)]


@dataclass
class _Answer:
    """What to write: pieces of bytes, each after a delay, then how the answer ends."""

    pieces: list[tuple[float, bytes]]
    ending: str = "done"  # done | stall | reset | close


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _head(status: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _json_answer(
    status: int, payload: bytes, rid: str, keep_alive: bool, extra: tuple[tuple[str, str], ...] = ()
) -> _Answer:
    headers = [
        ("content-type", JSON_CONTENT_TYPE),
        ("content-length", str(len(payload))),
        ("x-request-id", rid),
        *extra,
    ]
    return _Answer([(0.0, _head(status, headers, keep_alive) + payload)])


def _error_body(dialect: str, status: int, message: str) -> bytes:
    if dialect == "anthropic":
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return _dumps({"type": "error", "error": {"type": kind, "message": message}})
    kind = OPENAI_ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    code = "rate_limit_exceeded" if status == 429 else None
    return _dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


# --- the three dialects -------------------------------------------------------------


def _openai_usage(c: _Controls) -> dict:
    return {
        "prompt_tokens": c.prompt,
        "completion_tokens": c.completion,
        "total_tokens": c.prompt + c.completion,
        "prompt_tokens_details": {"cached_tokens": c.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _responses_usage(c: _Controls) -> dict:
    return {
        "input_tokens": c.prompt,
        "input_tokens_details": {"cached_tokens": c.cache_read},
        "output_tokens": c.completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": c.prompt + c.completion,
    }


def _anthropic_usage(c: _Controls, output_tokens: int) -> dict:
    return {
        "input_tokens": c.prompt,
        "cache_creation_input_tokens": c.cache_write,
        "cache_read_input_tokens": c.cache_read,
        "output_tokens": output_tokens,
    }


# Delta events differ only in their text (and, for Responses, a sequence number): one
# json.dumps per answer and a splice per delta keep a 1,000-stream burst cheap to serve.
TEXT_MARK = "@@TEXT@@"
SEQ_MARK = "@@SEQ@@"


def _per_text(template: bytes, texts: list[str], first_seq: int | None = None) -> list[bytes]:
    head, _, tail = template.partition(TEXT_MARK.encode())
    events = [head + json.dumps(t)[1:-1].encode() + tail for t in texts]
    if first_seq is not None:
        mark = json.dumps(SEQ_MARK).encode()
        events = [e.replace(mark, b"%d" % (first_seq + i)) for i, e in enumerate(events)]
    return events


def _chat_json(n: int, model: str, c: _Controls, text: str) -> dict:
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _openai_usage(c),
    }


def _chat_events(
    n: int, model: str, c: _Controls, body: dict
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(opening events, one event per text delta, closing events) as `data:` lines."""
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    created = int(time.time())

    def event(choices: list, **more) -> bytes:
        obj = {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": choices,
            **more,
        }
        if include_usage and "usage" not in obj:
            obj["usage"] = None
        return b"data: " + _dumps(obj) + b"\n\n"

    def choice(delta: dict, finish=None) -> list:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    opening = [event(choice({"role": "assistant", "content": "", "refusal": None}))]
    deltas = _per_text(event(choice({"content": TEXT_MARK})), c.texts())
    closing = [event(choice({}, "stop"))]
    if include_usage:
        closing.append(event([], usage=_openai_usage(c)))
    closing.append(b"data: [DONE]\n\n")
    return opening, deltas, closing


def _response_object(n: int, model: str, status: str, output: list, usage) -> dict:
    return {
        "id": f"resp_fake_{n}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "metadata": {},
        "usage": usage,
    }


def _response_message(n: int, text: str, status: str) -> dict:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": f"msg_fake_{n}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def _responses_json(n: int, model: str, c: _Controls, text: str) -> dict:
    return _response_object(
        n, model, "completed", [_response_message(n, text, "completed")], _responses_usage(c)
    )


def _responses_events(
    n: int, model: str, c: _Controls
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    seq = iter(range(1_000_000))
    item_id = f"msg_fake_{n}"

    def event(kind: str, **fields) -> bytes:
        number = fields.pop("sequence_number", None)
        obj = {"type": kind, "sequence_number": next(seq) if number is None else number, **fields}
        return b"event: " + kind.encode() + b"\ndata: " + _dumps(obj) + b"\n\n"

    texts = c.texts()
    text = "".join(texts)
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    part_done = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    opening = [
        event("response.created", response=_response_object(n, model, "in_progress", [], None)),
        event("response.in_progress", response=_response_object(n, model, "in_progress", [], None)),
        event(
            "response.output_item.added",
            output_index=0,
            item=_response_message(n, "", "in_progress"),
        ),
        event(
            "response.content_part.added",
            **where,
            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        ),
    ]
    first = next(seq)
    template = event(
        "response.output_text.delta",
        sequence_number=SEQ_MARK,
        **where,
        delta=TEXT_MARK,
        logprobs=[],
    )
    deltas = _per_text(template, texts, first_seq=first)
    for _ in texts[1:]:
        next(seq)
    closing = [
        event("response.output_text.done", **where, text=text, logprobs=[]),
        event("response.content_part.done", **where, part=part_done),
        event(
            "response.output_item.done",
            output_index=0,
            item=_response_message(n, text, "completed"),
        ),
        event("response.completed", response=_responses_json(n, model, c, text)),
    ]
    return opening, deltas, closing


def _messages_json(n: int, model: str, c: _Controls, text: str) -> dict:
    return {
        "id": f"msg_fake_{n}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(c, c.completion),
    }


def _messages_events(
    n: int, model: str, c: _Controls
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    def event(kind: str, **fields) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + _dumps({"type": kind, **fields}) + b"\n\n"

    message = {
        "id": f"msg_fake_{n}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _anthropic_usage(c, 1),
    }
    opening = [
        event("message_start", message=message),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        event("ping"),
    ]
    template = event(
        "content_block_delta", index=0, delta={"type": "text_delta", "text": TEXT_MARK}
    )
    deltas = _per_text(template, c.texts())
    closing = [
        event("content_block_stop", index=0),
        event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": c.completion},
        ),
        event("message_stop"),
    ]
    return opening, deltas, closing


ROUTES = {
    "/v1/chat/completions": ("openai", _chat_json, _chat_events),
    "/v1/responses": ("openai", _responses_json, _responses_events),
    "/v1/messages": ("anthropic", _messages_json, _messages_events),
}


def _big_text(c: _Controls) -> str:
    return "x" * c.size


DEFAULT_MODELS = ("fake-model", "fake-model-mini")


def build_answer(
    n: int,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    keep_alive: bool,
    models: tuple[str, ...] = DEFAULT_MODELS,
) -> _Answer:
    """The whole answer to one request (pure: no I/O)."""
    rid = f"fake-{n}"
    path = target.split("?", 1)[0]
    c = _Controls.from_headers(headers)
    dialect = "anthropic" if path.startswith("/v1/messages") else "openai"

    if c.scenario == "echo":
        payload = _dumps(
            {
                "method": method,
                "path": target,
                "headers": headers,
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "body_length": len(body),
            }
        )
        return _json_answer(200, payload, rid, keep_alive)
    if c.scenario == "stall-headers":
        return _Answer([], "stall")
    if path == "/v1/models" and method == "GET":
        if c.status:
            return _json_answer(
                c.status, _error_body(dialect, c.status, f"Fake error {c.status}"), rid, keep_alive
            )
        listed = [
            {"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in models
        ]
        return _json_answer(200, _dumps({"object": "list", "data": listed}), rid, keep_alive)
    if path == "/v1/files" and method == "GET":
        return _json_answer(200, _dumps({"object": "list", "data": []}), rid, keep_alive)
    route = ROUTES.get(path)
    if route is None or method != "POST":
        return _json_answer(
            404, _error_body(dialect, 404, f"Unknown route {method} {path}"), rid, keep_alive
        )
    if c.status:
        extra = (("retry-after", "7"),) if c.status == 429 else ()
        return _json_answer(
            c.status,
            _error_body(dialect, c.status, f"Fake error {c.status}"),
            rid,
            keep_alive,
            extra,
        )
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        request = None
    if not isinstance(request, dict):
        return _json_answer(
            400, _error_body(dialect, 400, "The body is not a JSON object"), rid, keep_alive
        )
    model = request.get("model") if isinstance(request.get("model"), str) else "fake-model"
    dialect, make_json, make_events = route

    if request.get("stream") is True and c.scenario not in ("big", "gzip"):
        if make_events is _chat_events:
            opening, deltas, closing = make_events(n, model, c, request)
        else:
            opening, deltas, closing = make_events(n, model, c)
        head = _head(
            200,
            [
                ("content-type", SSE_CONTENT_TYPE),
                ("cache-control", "no-cache"),
                ("transfer-encoding", "chunked"),
                ("x-request-id", rid),
            ],
            keep_alive,
        )
        first = head + _chunk(opening[0])
        if c.scenario in ("stall-mid", "reset-mid", "close-mid"):
            return _Answer([(0.0, first)], c.scenario.removesuffix("-mid"))
        pieces = [(0.0, first + b"".join(_chunk(e) for e in opening[1:]))]
        pieces += [(c.delay, _chunk(e)) for e in deltas]
        pieces.append((0.0, b"".join(_chunk(e) for e in closing) + b"0\r\n\r\n"))
        return _Answer(pieces)

    text = _big_text(c) if c.scenario == "big" else "".join(c.texts())
    payload = _dumps(make_json(n, model, c, text))
    if c.scenario == "gzip":
        payload = gzip.compress(payload)
        return _json_answer(200, payload, rid, keep_alive, (("content-encoding", "gzip"),))
    answer = _json_answer(200, payload, rid, keep_alive)
    if c.scenario in ("stall-mid", "reset-mid", "close-mid"):
        whole = answer.pieces[0][1]
        cut = len(whole) - len(payload) // 2
        return _Answer([(0.0, whole[:cut])], c.scenario.removesuffix("-mid"))
    if c.delay:
        # A slow JSON answer: the whole generation time passes before the headers.
        answer.pieces[0] = (c.delay * c.chunks, answer.pieces[0][1])
    return answer


# --- HTTP/1.1 over a raw asyncio Protocol ---------------------------------------------


class _Connection(asyncio.Protocol):
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
        self.transport.write(_head(status, [("content-length", "0")], False))
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


class FakeProvider:
    """The fake provider, served from a background thread with its own asyncio loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record: bool = True,
        reuse_port: bool = False,
        defaults: dict[str, str] | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
    ):
        # defaults: control headers applied to every request that does not send its own,
        # e.g. {"x-fake-status": "503"} for an upstream that always fails, or
        # {"x-fake-chunk-delay-ms": "500"} for a slow one. models: what GET /v1/models lists.
        self.defaults = {k.lower(): v for k, v in (defaults or {}).items()}
        self.models = tuple(models)
        self.host = host
        self.port = port
        self.record = record
        self.reuse_port = reuse_port
        self.requests: list[Received] = []
        self._disconnects = 0
        self._counter = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._cond = threading.Condition()
        self._connections: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def disconnects(self) -> int:
        return self._disconnects

    def clear(self) -> None:
        with self._cond:
            self.requests.clear()
            self._disconnects = 0
            self.max_in_flight = self.in_flight

    def wait_for_disconnects(self, n: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._disconnects >= n, timeout=timeout)

    def _count_disconnect(self) -> None:
        with self._cond:
            self._disconnects += 1
            self._cond.notify_all()

    def _enter(self) -> None:
        # Only the provider's own loop thread calls _enter and _leave.
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        self.in_flight -= 1

    def _next_number(self) -> int:
        self._counter += 1
        return self._counter

    async def serve(self) -> None:
        """Open the listening socket on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _Connection(self),
            self.host,
            self.port,
            backlog=4096,
            reuse_port=self.reuse_port or None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> FakeProvider:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.serve())
            except BaseException as exc:  # handed to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def shutdown() -> None:
            self._server.close()
            for conn in list(self._connections):
                if conn.task is not None:
                    conn.task.cancel()
                conn.transport.abort()
            loop.call_later(0.01, loop.stop)

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _serve_forever(host: str, port: int, reuse_port: bool) -> None:
    async def main() -> None:
        provider = FakeProvider(host, port, record=False, reuse_port=reuse_port)
        await provider.serve()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"fake provider pid {os.getpid()} listening on {provider.base_url}", flush=True)
        await stop.wait()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--processes", type=int, default=1, help="processes sharing the port through SO_REUSEPORT"
    )
    args = parser.parse_args(argv)
    if args.processes <= 1:
        _serve_forever(args.host, args.port, False)
        return
    children: list[int] = []

    def forward(signum, _frame):
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    # Signals wait until every child exists and the parent forwards them, so a stop
    # that comes early can neither kill the parent alone nor reach a half-made child.
    stops = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:
            try:
                for sig in stops:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
                _serve_forever(args.host, args.port, True)
            finally:
                os._exit(0)
        children.append(pid)
    for sig in stops:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    for pid in children:
        os.waitpid(pid, 0)
    sys.exit(0)


if __name__ == "__main__":
    main()
