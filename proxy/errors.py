"""The proxy's own failures, and the one table that maps every refusal to a status and code.

Keys and upstreams raise their own typed exceptions; this module says what each
becomes on /v1. `dialects.error_body` then writes it in the caller's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DatabaseError

from keys.exceptions import KeyExpired, KeyInvalid, KeyMissing
from limits.exceptions import LimitRefused
from upstreams.crypto import SecretUnreadable
from upstreams.exceptions import (
    ModelNotAllowed,
    ModelNotFound,
    UnknownUpstream,
    UpstreamForbidden,
    UpstreamUnavailable,
)


class GatewayError(Exception):
    """A failure the gateway answers itself, before any byte of an upstream answer."""

    status = 500
    code = "internal_error"


class InvalidPath(GatewayError):
    """The path could leave the upstream's base_url (dot segments, '//', encoded tricks)."""

    status = 400
    code = "invalid_request"


class MalformedBody(GatewayError):
    status = 400
    code = "invalid_request"


class BodyTooLarge(GatewayError):
    status = 413
    code = "request_too_large"


class RequestTimeout(GatewayError):
    """The request body did not arrive within its deadline (PROXY_BODY_TIMEOUT, PROXY_BODY_MIN_RATE)."""

    status = 408
    code = "request_timeout"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"


class ClientGone(GatewayError):
    """The client went away while sending its request; nobody is left to answer."""

    status = 0
    code = "client_disconnected"


class UpstreamUnreachable(GatewayError):
    status = 502
    code = "bad_gateway"

    def __init__(self, message: str = "", reason: str = ""):
        super().__init__(message)
        # Short, for the row's list of failed attempts: "connection refused", "IncompleteRead".
        self.reason = reason or "unreachable"


class UpstreamTimeout(GatewayError):
    status = 504
    code = "gateway_timeout"
    reason = "timeout"


class UpstreamConnectTimeout(UpstreamTimeout):
    """No connection within the connect timeout: the upstream never saw the request,
    so, unlike a timeout waiting for the answer, the next upstream may be tried."""

    reason = "connect timeout"


class StreamBroken(Exception):
    """The upstream's answer ended badly after its headers were relayed.

    Raised out of the relay's iterator so the WSGI server drops the client's
    connection without a clean end: the client sees an error, never a short answer
    that looks complete. The message names what happened, never a secret or a URL.
    `kind` is "timeout" (the upstream went silent), "broken" (its connection broke or
    its framing came up short) or "too_long" (PROXY_MAX_STREAM_SECONDS ran out).
    """

    def __init__(self, message: str, kind: str = "broken"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    retry_after: int | None = None  # whole seconds, sent as Retry-After
    # The cause, for the row's error and the server log, where the caller is told less.
    cause: str = ""


# Order matters only for subclasses; these are all leaves.
_TABLE: tuple[tuple[type[BaseException], int, str, str | None], ...] = (
    (KeyMissing, 401, "missing_api_key", None),
    (KeyInvalid, 401, "invalid_api_key", None),
    (KeyExpired, 401, "api_key_expired", None),
    (UnknownUpstream, 400, "unknown_upstream", None),
    (UpstreamForbidden, 403, "forbidden", None),
    (ModelNotAllowed, 403, "model_not_allowed", None),
    (ModelNotFound, 404, "model_not_found", None),
    (UpstreamUnavailable, 503, "service_unavailable", None),
    # A secret no key decrypts is the operator's problem; the caller just sees
    # the upstream as unavailable.
    (SecretUnreadable, 503, "service_unavailable", "The upstream is not available"),
    (DatabaseError, 503, "service_unavailable", "The gateway's database is unavailable"),
)


# What the operator is told (row and server log) where the caller only sees the code.
_CAUSES = {
    SecretUnreadable: (
        "the upstream's secret cannot be decrypted with ENCRYPTION_KEY or "
        "ENCRYPTION_KEY_PREVIOUS (a key rotation done in the wrong order?): put the key it "
        "was written with in ENCRYPTION_KEY_PREVIOUS, or enter the secret again"
    ),
}

# Everything the proxy answers with an error of its own rather than a 500.
REFUSED: tuple[type[BaseException], ...] = (
    GatewayError,
    LimitRefused,
    *(row[0] for row in _TABLE),
)

INTERNAL = Refusal(500, "internal_error", "The gateway failed to handle this request")


def refusal_for(exc: BaseException) -> Refusal:
    """The status, code and caller-safe message for an exception the proxy answers itself."""
    if isinstance(exc, GatewayError):
        return Refusal(exc.status, exc.code, str(exc) or exc.code)
    if isinstance(exc, LimitRefused):
        return Refusal(exc.status, exc.code, str(exc), retry_after=exc.retry_after)
    for kind, status, code, fixed_message in _TABLE:
        if isinstance(exc, kind):
            return Refusal(
                status, code, fixed_message or str(exc) or code, cause=_CAUSES.get(kind, "")
            )
    raise TypeError(f"no refusal is defined for {type(exc).__name__}")
