"""The fake provider's three dialects: OpenAI chat completions and Responses, Anthropic
messages, each as one JSON body or as an event stream, with usage, and their error bodies.

Pure: the controls a request sends (x-fake-* headers, read into Controls) set the texts,
their number and the token counts; nothing here knows about sockets or faults.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

MAX_BODY_BYTES = 256 * 1024 * 1024

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


@dataclass
class Controls:
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
    def from_headers(cls, headers: dict[str, str]) -> Controls:
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


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def error_body(dialect: str, status: int, message: str) -> bytes:
    if dialect == "anthropic":
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return dumps({"type": "error", "error": {"type": kind, "message": message}})
    kind = OPENAI_ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    code = "rate_limit_exceeded" if status == 429 else None
    return dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def _openai_usage(c: Controls) -> dict:
    return {
        "prompt_tokens": c.prompt,
        "completion_tokens": c.completion,
        "total_tokens": c.prompt + c.completion,
        "prompt_tokens_details": {"cached_tokens": c.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _responses_usage(c: Controls) -> dict:
    return {
        "input_tokens": c.prompt,
        "input_tokens_details": {"cached_tokens": c.cache_read},
        "output_tokens": c.completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": c.prompt + c.completion,
    }


def _anthropic_usage(c: Controls, output_tokens: int) -> dict:
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


def _chat_json(n: int, model: str, c: Controls, text: str) -> dict:
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


def chat_events(
    n: int, model: str, c: Controls, body: dict
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
        return b"data: " + dumps(obj) + b"\n\n"

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


def _responses_json(n: int, model: str, c: Controls, text: str) -> dict:
    return _response_object(
        n, model, "completed", [_response_message(n, text, "completed")], _responses_usage(c)
    )


def _responses_events(
    n: int, model: str, c: Controls
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    seq = iter(range(1_000_000))
    item_id = f"msg_fake_{n}"

    def event(kind: str, **fields) -> bytes:
        number = fields.pop("sequence_number", None)
        obj = {"type": kind, "sequence_number": next(seq) if number is None else number, **fields}
        return b"event: " + kind.encode() + b"\ndata: " + dumps(obj) + b"\n\n"

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


def _messages_json(n: int, model: str, c: Controls, text: str) -> dict:
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
    n: int, model: str, c: Controls
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    def event(kind: str, **fields) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + dumps({"type": kind, **fields}) + b"\n\n"

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
    "/v1/chat/completions": ("openai", _chat_json, chat_events),
    "/v1/responses": ("openai", _responses_json, _responses_events),
    "/v1/messages": ("anthropic", _messages_json, _messages_events),
}


DEFAULT_MODELS = ("fake-model", "fake-model-mini")
