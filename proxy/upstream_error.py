"""The upstream's own error message, for the log row of an error answer (pure: no I/O).

OpenAI answers `{"error": {"message": ...}}`, Anthropic `{"type": "error", "error":
{"type": ..., "message": ...}}`; some servers put a bare string in `error` or a
top-level `message`. The message is cut to the row's 500 characters, and never
carries a secret: the upstream's own secret, if echoed, becomes its mask, and
anything shaped like a gateway key becomes its prefix and a mask.
"""

from __future__ import annotations

import json
import re
import zlib

# The head of an error body kept for reading; error bodies are small.
CAPTURE_BYTES = 64 * 1024
MAX_MESSAGE = 500
_GATEWAY_KEY = re.compile(r"sk-auto-[A-Za-z0-9_-]{6,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def upstream_error_message(
    body: bytes,
    *,
    content_encoding: str = "",
    secret: str = "",
    secret_mask: str = "***",  # noqa: S107 - a mask, not a secret
) -> str:
    """The error.message of an upstream's error body, cleaned; "" when it has none."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            body = zlib.decompressobj(wbits=47).decompress(body, CAPTURE_BYTES)
        except zlib.error:
            return ""
    elif encoding not in ("", "identity"):
        return ""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(obj, dict):
        return ""
    error = obj.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        message = obj.get("message")
    if not isinstance(message, str):
        return ""
    if secret:
        message = message.replace(secret, secret_mask)
    message = _GATEWAY_KEY.sub(lambda m: m.group()[:12] + "***", message)
    return _CONTROL.sub(" ", message).strip()[:MAX_MESSAGE]


class ErrorCapture:
    """Wraps a usage reader: feeds it every chunk and keeps the head of the body too."""

    def __init__(self, inner):
        self.inner = inner
        self.head = bytearray()

    @property
    def retained(self) -> int:
        return self.inner.retained + len(self.head)

    def feed(self, chunk: bytes) -> None:
        room = CAPTURE_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.inner.feed(chunk)

    def result(self):
        return self.inner.result()
