"""Model and stream peeked from a request body, cheaply, before the upstream is chosen.

A pure function: no I/O, no Django. Small bodies are parsed whole; large ones (big
multimodal prompts) are scanned for the two keys so the gateway never parses megabytes of
base64 to learn a model name.
"""

from __future__ import annotations

import functools
import json
import re

from proxy.usage import media_type, quote_escaped

# Request bodies up to this size are parsed whole to peek at model and stream; larger
# ones (big multimodal prompts) are scanned for the two keys instead.
PEEK_PARSE_BYTES = 1024 * 1024

_OBJECT_START = re.compile(rb"\s*\{")
_MODEL_KEY = re.compile(rb'"model"\s*:\s*"((?:[^"\\]|\\.){0,1000})"')
_STREAM_KEY = re.compile(rb'"stream"\s*:\s*(true|false)')


def _last_key_match(pattern: re.Pattern, body: bytes):
    found = None
    for match in pattern.finditer(body):
        if not quote_escaped(body, match.start()):
            found = match
    return found


@functools.cache
def _int_key(name: str) -> re.Pattern:
    # The value as far as a JSON number's characters go: "100" (a string) or null is no int.
    return re.compile(rb'"' + re.escape(name.encode()) + rb'"\s*:\s*([-+.\w]{0,64})')


def peek_large_int(body: bytes, name: str) -> int | None:
    """A large body's top-level non-negative integer `name`, found as `peek_request` finds
    the model: the last unescaped occurrence of the key counts (as the last of duplicate
    keys does for json.loads), and it must be a plain integer. None otherwise."""
    match = _last_key_match(_int_key(name), body)
    if match is None or not match.group(1).isdigit():
        return None
    return int(match.group(1))


def peek_request(body: bytes, content_type: str) -> tuple[str, bool]:
    """(model, stream) from a JSON request body when it can be read cheaply; ("", False) otherwise.

    Never raises: invalid JSON, another encoding than UTF-8 or a nesting too deep to
    parse are the upstream's business, not the gateway's.
    """
    media = media_type(content_type or "")
    if not body or media.startswith("multipart/") or not _OBJECT_START.match(body):
        return "", False
    if len(body) <= PEEK_PARSE_BYTES:
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            return "", False
        if not isinstance(obj, dict):
            return "", False
        model = obj.get("model")
        return (model if isinstance(model, str) else ""), obj.get("stream") is True
    # A large prompt: the SDKs put "model" and "stream" after the messages, at top level,
    # so the last unescaped occurrence of each key is the one that counts.
    model_match = _last_key_match(_MODEL_KEY, body)
    model = ""
    if model_match is not None:
        try:
            value = json.loads(b'"' + model_match.group(1) + b'"')
        except ValueError:
            value = ""
        model = value if isinstance(value, str) else ""
    stream_match = _last_key_match(_STREAM_KEY, body)
    return model, stream_match is not None and stream_match.group(1) == b"true"
