"""OpenAI vs Anthropic: which dialect a path speaks, how a secret is sent, how errors look. Pure."""

from __future__ import annotations

import json

OPENAI = "openai"
ANTHROPIC = "anthropic"

# Anthropic's API lives under /v1/messages (messages, count_tokens, batches); every
# other path is answered in OpenAI's shape, the lingua franca of the SDKs.
_ANTHROPIC_PATHS = ("messages",)

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
# Anthropic's own categories, which its SDK and clients switch on; 5xx is api_error and
# anything else invalid_request_error (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def dialect_for_path(path: str, *, anthropic_version: str | None = None) -> str:
    """The dialect of a path relative to /v1/ (e.g. "chat/completions", "messages").

    Anthropic's SDK sends `anthropic-version` on every call, OpenAI's never does: with
    that header, a shared path such as `models` or `files` is Anthropic's too.
    """
    first = path.split("/", 1)[0].split("?", 1)[0]
    if first in _ANTHROPIC_PATHS or anthropic_version:
        return ANTHROPIC
    return OPENAI


def secret_header(*, provider: str, secret: str) -> tuple[str, str]:
    """The header that carries an upstream's secret, the provider's way."""
    if provider == ANTHROPIC:
        return ("x-api-key", secret)
    if provider == "azure":
        return ("api-key", secret)
    return ("Authorization", f"Bearer {secret}")


def anthropic_error_type(status: int) -> str:
    if status >= 500:
        return "api_error"
    return _ANTHROPIC_ERROR_TYPES.get(status, "invalid_request_error")


def presented_key(*, authorization: str | None, x_api_key: str | None) -> str | None:
    """The gateway key a client presented, from `Authorization: Bearer …` or `x-api-key`.

    None when it presented nothing. A malformed Authorization (bare "Bearer",
    another scheme) returns its raw value, which then fails the key check like any
    other wrong key: every malformed variant gets the same answer.
    """
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if not x_api_key:
            return authorization
    if x_api_key:
        return x_api_key.strip() or x_api_key
    return None


def error_body(*, dialect: str, status: int, code: str, message: str) -> bytes:
    """A gateway error in the caller's dialect.

    OpenAI: {"error": {"message", "type", "code", "param"}}.
    Anthropic: {"type": "error", "error": {"type", "message", "code"}}, where the type is
    Anthropic's own category for the status and the code is ours.
    """
    if dialect == ANTHROPIC:
        payload: dict = {
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message, "code": code},
        }
    else:
        payload = {
            "error": {
                "message": message,
                "type": _OPENAI_ERROR_TYPES.get(status, "api_error"),
                "code": code,
                "param": None,
            }
        }
    return json.dumps(payload).encode("utf-8")
