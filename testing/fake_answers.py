"""One fake answer, built whole before a byte is written: the route, the dialect's body or
event stream, and the scenarios (error statuses, echo, big, gzip, stalls, resets, closes)
that make it misbehave on purpose. Pure: no I/O; testing/fake_http.py plays it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass

from testing.fake_dialects import DEFAULT_MODELS, ROUTES, Controls, chat_events, dumps, error_body

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
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"


@dataclass
class Answer:
    """What to write: pieces of bytes, each after a delay, then how the answer ends."""

    pieces: list[tuple[float, bytes]]
    ending: str = "done"  # done | stall | reset | close


def http_head(status: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def json_answer(
    status: int, payload: bytes, rid: str, keep_alive: bool, extra: tuple[tuple[str, str], ...] = ()
) -> Answer:
    headers = [
        ("content-type", JSON_CONTENT_TYPE),
        ("content-length", str(len(payload))),
        ("x-request-id", rid),
        *extra,
    ]
    return Answer([(0.0, http_head(status, headers, keep_alive) + payload)])


def _big_text(c: Controls) -> str:
    return "x" * c.size


def build_answer(
    n: int,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    keep_alive: bool,
    models: tuple[str, ...] = DEFAULT_MODELS,
) -> Answer:
    """The whole answer to one request (pure: no I/O)."""
    rid = f"fake-{n}"
    path = target.split("?", 1)[0]
    c = Controls.from_headers(headers)
    dialect = "anthropic" if path.startswith("/v1/messages") else "openai"

    if c.scenario == "echo":
        payload = dumps(
            {
                "method": method,
                "path": target,
                "headers": headers,
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "body_length": len(body),
            }
        )
        return json_answer(200, payload, rid, keep_alive)
    if c.scenario == "stall-headers":
        return Answer([], "stall")
    if path == "/v1/models" and method == "GET":
        if c.status:
            return json_answer(
                c.status, error_body(dialect, c.status, f"Fake error {c.status}"), rid, keep_alive
            )
        listed = [
            {"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in models
        ]
        return json_answer(200, dumps({"object": "list", "data": listed}), rid, keep_alive)
    if path == "/v1/files" and method == "GET":
        return json_answer(200, dumps({"object": "list", "data": []}), rid, keep_alive)
    route = ROUTES.get(path)
    if route is None or method != "POST":
        return json_answer(
            404, error_body(dialect, 404, f"Unknown route {method} {path}"), rid, keep_alive
        )
    if c.status:
        extra = (("retry-after", "7"),) if c.status == 429 else ()
        return json_answer(
            c.status,
            error_body(dialect, c.status, f"Fake error {c.status}"),
            rid,
            keep_alive,
            extra,
        )
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        request = None
    if not isinstance(request, dict):
        return json_answer(
            400, error_body(dialect, 400, "The body is not a JSON object"), rid, keep_alive
        )
    model = request.get("model") if isinstance(request.get("model"), str) else "fake-model"
    dialect, make_json, make_events = route

    if request.get("stream") is True and c.scenario not in ("big", "gzip"):
        if make_events is chat_events:
            opening, deltas, closing = make_events(n, model, c, request)
        else:
            opening, deltas, closing = make_events(n, model, c)
        head = http_head(
            200,
            [
                ("content-type", SSE_CONTENT_TYPE),
                ("cache-control", "no-cache"),
                ("transfer-encoding", "chunked"),
                ("x-request-id", rid),
            ],
            keep_alive,
        )
        first = head + http_chunk(opening[0])
        if c.scenario in ("stall-mid", "reset-mid", "close-mid"):
            return Answer([(0.0, first)], c.scenario.removesuffix("-mid"))
        pieces = [(0.0, first + b"".join(http_chunk(e) for e in opening[1:]))]
        pieces += [(c.delay, http_chunk(e)) for e in deltas]
        pieces.append((0.0, b"".join(http_chunk(e) for e in closing) + b"0\r\n\r\n"))
        return Answer(pieces)

    text = _big_text(c) if c.scenario == "big" else "".join(c.texts())
    payload = dumps(make_json(n, model, c, text))
    if c.scenario == "gzip":
        payload = gzip.compress(payload)
        return json_answer(200, payload, rid, keep_alive, (("content-encoding", "gzip"),))
    answer = json_answer(200, payload, rid, keep_alive)
    if c.scenario in ("stall-mid", "reset-mid", "close-mid"):
        whole = answer.pieces[0][1]
        cut = len(whole) - len(payload) // 2
        return Answer([(0.0, whole[:cut])], c.scenario.removesuffix("-mid"))
    if c.delay:
        # A slow JSON answer: the whole generation time passes before the headers.
        answer.pieces[0] = (c.delay * c.chunks, answer.pieces[0][1])
    return answer
