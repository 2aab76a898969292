"""Rewriting the requested model into an upstream's own name (its `aliases`). Pure.

Only the value of the body's top-level `model` changes; every other byte (key order,
spacing, escapes, numbers written as sent) stays exactly as the client wrote it, so
what the upstream reads is what the client sent but for that one string.
"""

from __future__ import annotations

import json
import re

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def with_model(body: bytes, model: str) -> bytes | None:
    """The body with its top-level "model" string set to `model`, or None when the body
    is not a UTF-8 JSON object with such a string (it then goes as it came)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    spans = _model_spans(text)
    if not spans:
        return None
    replacement = json.dumps(model, ensure_ascii=False)
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], replacement]
        last = end
    out.append(text[last:])
    return "".join(out).encode("utf-8")


def _model_spans(text: str) -> list[tuple[int, int]]:
    """Where each top-level "model" string value sits in the text ([] if none or invalid)."""
    at = _WS.match(text, 0).end()
    if text[at : at + 1] != "{":
        return []
    at = _WS.match(text, at + 1).end()
    if text[at : at + 1] == "}":
        return []
    spans = []
    try:
        while True:
            if text[at : at + 1] != '"':
                return []
            key, at = json.decoder.scanstring(text, at + 1)
            at = _WS.match(text, at).end()
            if text[at : at + 1] != ":":
                return []
            at = _WS.match(text, at + 1).end()
            value, end = _DECODER.raw_decode(text, at)
            if key == "model" and isinstance(value, str):
                spans.append((at, end))
            at = _WS.match(text, end).end()
            if text[at : at + 1] == ",":
                at = _WS.match(text, at + 1).end()
                continue
            if text[at : at + 1] == "}":
                break
            return []
    except (ValueError, RecursionError):
        return []
    if _WS.match(text, at + 1).end() != len(text):
        return []
    return spans
