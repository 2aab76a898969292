"""Token usage read on the side of an answer (model/stream peeked from a request: proxy.peek).

Pure functions and small classes: no I/O, no Django. The relay feeds a reader every
chunk it passes on (the bytes themselves are never altered) and asks for the result
when the answer ends. Memory stays bounded whatever the answer's size: JSON bodies keep
a head and a tail window, event streams keep only the current line and event.

Semantics (what lands in the request log):
- OpenAI chat completions: prompt/completion/total as reported; cache_read_tokens is
  prompt_tokens_details.cached_tokens, already counted inside prompt_tokens.
- OpenAI Responses: input/output/total tokens; cache_read_tokens is
  input_tokens_details.cached_tokens, already inside input_tokens.
- Anthropic: prompt = input_tokens and completion = output_tokens; cache_read_tokens and
  cache_write_tokens are cache_read_input_tokens and cache_creation_input_tokens, which
  Anthropic counts OUTSIDE input_tokens. total_tokens is every token billed:
  input + cache_read + cache_write + output. In a stream, input and cache counts come
  from message_start, output from the last message_delta (message_start's output is a
  placeholder, so a stream cut before any message_delta leaves completion unknown).
- A count not seen (or not a sane non-negative integer) stays None, never 0.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field, fields

from proxy.sse import BoundedBytes, Event, SSEParser

MAX_COUNT = 2**31 - 1  # the log's PositiveIntegerField
JSON_HEAD_BYTES = 64 * 1024
JSON_TAIL_BYTES = 64 * 1024
# A compressed answer is inflated only this far for reading usage (a bomb costs no more).
MAX_INFLATED_BYTES = 256 * 1024 * 1024
INFLATE_STEP = 256 * 1024
RESPONSE_EVENTS_WITH_USAGE = ("response.completed", "response.incomplete", "response.failed")


_LOG_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
)


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    # Anthropic counts cache reads and writes outside input_tokens; OpenAI inside (prices.cost).
    # Not part of equality: it says how to read the counts, it is not a count.
    cache_outside_prompt: bool = field(default=False, compare=False)

    def as_log_fields(self) -> dict:
        """The keyword arguments of logs.services.log_finish that carry usage."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in _LOG_FIELDS}


def _count(value) -> int | None:
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    return None


def _sum(*parts: int | None) -> int | None:
    total = sum(parts)
    return total if total <= MAX_COUNT else None


def _detail(usage: dict, details: str, name: str) -> int | None:
    inner = usage.get(details)
    return _count(inner.get(name)) if isinstance(inner, dict) else None


def _is_anthropic_shape(usage: dict, dialect: str) -> bool:
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        return True
    if "input_tokens_details" in usage or "total_tokens" in usage:
        return False
    return dialect == "anthropic"


def _anthropic_usage(input_tokens, output_tokens, cache_read, cache_write) -> Usage:
    total = None
    if input_tokens is not None and output_tokens is not None:
        total = _sum(input_tokens, output_tokens, cache_read or 0, cache_write or 0)
    return Usage(input_tokens, output_tokens, total, cache_read, cache_write, True)


def usage_from_object(usage, dialect: str) -> Usage | None:
    """A usage object of any of the three shapes, or None when it is not one."""
    if not isinstance(usage, dict):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI chat
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        total = _count(usage.get("total_tokens"))
        if total is None and prompt is not None and completion is not None:
            total = _sum(prompt, completion)
        cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
        return Usage(prompt, completion, total, cached, None)
    if "input_tokens" not in usage and "output_tokens" not in usage:
        return None
    input_tokens = _count(usage.get("input_tokens"))
    output_tokens = _count(usage.get("output_tokens"))
    if _is_anthropic_shape(usage, dialect):
        return _anthropic_usage(
            input_tokens,
            output_tokens,
            _count(usage.get("cache_read_input_tokens")),
            _count(usage.get("cache_creation_input_tokens")),
        )
    total = _count(usage.get("total_tokens"))  # OpenAI Responses
    if total is None and input_tokens is not None and output_tokens is not None:
        total = _sum(input_tokens, output_tokens)
    cached = _detail(usage, "input_tokens_details", "cached_tokens")
    return Usage(input_tokens, output_tokens, total, cached, None)


_USAGE_KEY = re.compile(rb'"usage"\s*:\s*\{')
_TAIL_CANDIDATES = 8


def quote_escaped(data: bytes, quote_at: int) -> bool:
    """Whether the quote at this index is preceded by an odd run of backslashes (text, not a key)."""
    run = 0
    i = quote_at - 1
    while i >= 0 and data[i] == 0x5C:
        run += 1
        i -= 1
    return run % 2 == 1


def usage_in_tail(tail: bytes) -> dict | None:
    """The last `"usage": {...}` object that parses whole within the tail of a document."""
    decoder = json.JSONDecoder()
    matches = list(_USAGE_KEY.finditer(tail))[-_TAIL_CANDIDATES:]
    for match in reversed(matches):
        if quote_escaped(tail, match.start()):
            continue
        text = tail[match.end() - 1 :].decode("utf-8", "replace")
        try:
            obj, _ = decoder.raw_decode(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


# --- readers -------------------------------------------------------------------------


class _NoUsage:
    """For answers that carry no readable usage (other content types, encodings)."""

    retained = 0

    def feed(self, chunk: bytes) -> None:
        pass

    def result(self) -> Usage:
        return Usage()


class _JSONUsage:
    def __init__(self, dialect: str):
        self.dialect = dialect
        self.window = BoundedBytes(JSON_HEAD_BYTES, JSON_TAIL_BYTES)

    @property
    def retained(self) -> int:
        return self.window.retained

    def feed(self, chunk: bytes) -> None:
        self.window.add(chunk)

    def result(self) -> Usage:
        if self.window.complete:
            try:
                body = json.loads(self.window.value())
            except (ValueError, RecursionError):
                return Usage()
            found = (
                usage_from_object(body.get("usage"), self.dialect)
                if isinstance(body, dict)
                else None
            )
        else:
            found = usage_from_object(usage_in_tail(bytes(self.window.tail)), self.dialect)
        return found or Usage()


def _mentions_usage(data: bytes) -> bool:
    # Cheap filter before parsing: chat chunks with include_usage carry "usage":null.
    seen = data.count(b'"usage"')
    return seen > data.count(b'"usage":null')


class _SSEUsage:
    def __init__(self, dialect: str):
        self.dialect = dialect
        self.parser = SSEParser()
        self.usage: Usage | None = None  # the latest whole usage (OpenAI)
        # Anthropic streams report in two events; keep the parts apart until the end.
        self.anthropic: dict[str, int | None] = {}

    @property
    def retained(self) -> int:
        return self.parser.retained

    def feed(self, chunk: bytes) -> None:
        for event in self.parser.feed(chunk):
            self._read(event)

    def result(self) -> Usage:
        for event in self.parser.flush():
            self._read(event)
        if self.anthropic:
            parts = self.anthropic
            return _anthropic_usage(
                parts.get("input"),
                parts.get("output"),
                parts.get("cache_read"),
                parts.get("cache_write"),
            )
        return self.usage or Usage()

    def _read(self, event: Event) -> None:
        if event.truncated:
            if _mentions_usage(event.tail):
                self._take(usage_from_object(usage_in_tail(event.tail), self.dialect))
            return
        if not _mentions_usage(event.data):
            return
        try:
            obj = json.loads(event.data)
        except (ValueError, RecursionError):
            return
        if not isinstance(obj, dict):
            return
        kind = obj.get("type")
        if kind == "message_start":
            message = obj.get("message")
            if isinstance(message, dict):
                self._take_anthropic(message.get("usage"), with_output=False)
        elif kind == "message_delta":
            self._take_anthropic(obj.get("usage"), with_output=True)
        elif kind in RESPONSE_EVENTS_WITH_USAGE and isinstance(obj.get("response"), dict):
            self._take(usage_from_object(obj["response"].get("usage"), self.dialect))
        else:
            self._take(usage_from_object(obj.get("usage"), self.dialect))

    def _take(self, usage: Usage | None) -> None:
        if usage is not None:
            self.usage = usage

    def _take_anthropic(self, usage, *, with_output: bool) -> None:
        if not isinstance(usage, dict):
            return
        names = {
            "input": "input_tokens",
            "cache_read": "cache_read_input_tokens",
            "cache_write": "cache_creation_input_tokens",
        }
        if with_output:
            names["output"] = "output_tokens"
        for part, name in names.items():
            value = _count(usage.get(name))
            if value is not None:
                self.anthropic[part] = value
            else:
                self.anthropic.setdefault(part, None)


class _Inflating:
    """Inflates a gzip or deflate answer before it reaches the reader, a step at a time."""

    def __init__(self, inner):
        self.inner = inner
        self.inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header
        self.inflated = 0
        self.failed = False

    @property
    def retained(self) -> int:
        return self.inner.retained

    def feed(self, chunk: bytes) -> None:
        if self.failed:
            return
        data = chunk
        try:
            while True:
                out = self.inflater.decompress(data, INFLATE_STEP)
                self.inflated += len(out)
                if self.inflated > MAX_INFLATED_BYTES:
                    self.failed = True
                    return
                if out:
                    self.inner.feed(out)
                data = self.inflater.unconsumed_tail
                if not data and len(out) < INFLATE_STEP:
                    return
        except zlib.error:
            self.failed = True

    def result(self) -> Usage:
        return Usage() if self.failed else self.inner.result()


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def usage_reader(*, content_type: str, dialect: str, content_encoding: str = ""):
    """A reader for one answer: .feed(chunk) for each chunk as relayed, then .result() -> Usage.

    dialect is "openai" or "anthropic"; content_encoding is the answer's
    Content-Encoding (gzip and deflate are inflated on the side; others read as unknown).
    """
    media = media_type(content_type or "")
    if media == "text/event-stream":
        reader = _SSEUsage(dialect)
    elif media == "application/json" or media.endswith("+json"):
        reader = _JSONUsage(dialect)
    else:
        return _NoUsage()
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return reader
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflating(reader)
    return _NoUsage()
