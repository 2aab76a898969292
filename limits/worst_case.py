"""A request's worst case in tokens, read from its body. Pure: no I/O, no Django."""

from __future__ import annotations

import json
import re

from proxy.peek import PEEK_PARSE_BYTES, peek_large_int

# The output limits a body may carry, in the order the dialects name them (OpenAI chat,
# OpenAI chat's newer name, OpenAI Responses; Anthropic uses max_tokens).
OUTPUT_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# Bodies are parsed whole up to this size to find the output limit (as the proxy parses
# them to peek at the model); a larger one (a big multimodal prompt) is scanned for the
# keys as the proxy scans it for the model (proxy.peek.peek_large_int).
PARSE_BYTES = PEEK_PARSE_BYTES
# A larger output limit counts as this many tokens: more than any model answers, so the
# bound still holds, and small enough that the counters' 64-bit sums never overflow, nor
# the USD columns at any real price (an unbounded one gave a 500 on SQLite and a 503
# without a row on PostgreSQL). A request that sets more is admitted or refused as one
# that sets this.
MAX_OUTPUT_LIMIT = 10**9

_OBJECT_START = re.compile(rb"\s*\{")


def output_limit(body: bytes | None) -> int | None:
    """The output limit the body sets (the smallest if several, at most MAX_OUTPUT_LIMIT),
    or None."""
    if not body or not _OBJECT_START.match(body):
        return None
    if len(body) > PARSE_BYTES:
        found = [
            value
            for name in OUTPUT_LIMIT_FIELDS
            if (value := peek_large_int(body, name)) is not None
        ]
    else:
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        found = [
            value
            for name in OUTPUT_LIMIT_FIELDS
            if type(value := obj.get(name)) is int and value >= 0
        ]
    return min(min(found), MAX_OUTPUT_LIMIT) if found else None


def worst_case_tokens(body: bytes | None, *, default_output: int) -> tuple[int, int]:
    """(input, output) upper bounds: input by the body's byte length (no tokenizer makes
    more tokens than bytes), output by the body's limit, else `default_output`."""
    limit = output_limit(body)
    return len(body or b""), default_output if limit is None else limit
