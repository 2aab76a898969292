"""/v1/<path>: one proxied request, from its URL to its log row.

The recipe, in order (`_serve`):
  1. read the request: the path must stay inside any upstream's base_url
  2. authenticate the key                       keys.selectors.key_authenticate
  3. choose the upstream                        upstreams.selectors.upstream_choose
  4. give the database connection back (a body may trickle in for a long time),
     then read the body (up to PROXY_MAX_BODY_BYTES, within PROXY_BODY_TIMEOUT and
     above PROXY_BODY_MIN_RATE) and peek at `model` and `stream`
  5. open the log row (in flight)               logs.services.log_open
     and give the database connection back: the answer may take minutes
  6. forward, once                              proxy.forward.upstream_send
  7. relay the answer as it arrives             proxy.relay.Relay
  8. finish the row when the answer ends, however it ends     logs.services.log_finish

A request refused before step 6 gets one finished row (logs.services.log_record) and
an error in the caller's dialect; so does one whose upstream cannot be reached.
Every answer carries X-Gateway-Request-ID, the request_id of its row. Only when the
database itself is down is there no row (and the answer is a 503).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from keys.cache import KeyGrant
from keys.selectors import key_authenticate
from logs.services import log_finish, log_open, log_record
from proxy import dialects, forward
from proxy.errors import (
    INTERNAL,
    REFUSED,
    MethodNotAllowed,
    Refusal,
    UpstreamUnreachable,
    refusal_for,
)
from proxy.relay import Ending, ProxiedResponse, Relay, UsageFeed
from proxy.usage import peek_request, usage_reader
from upstreams.crypto import secret_hint
from upstreams.selectors import upstream_choose, upstream_names_for

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Gateway-Request-ID"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# Anything else (TRACE, CONNECT, WebDAV verbs) could echo the upstream's secret back.
ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class _Call:
    """What the log row of one request needs, filled in as the recipe goes."""

    request_id: uuid.UUID
    started: float
    dialect: str
    method: str
    path: str
    api_key_id: uuid.UUID | None = None
    upstream_id: uuid.UUID | None = None
    model: str = ""
    is_stream: bool = False
    log_id: int | None = None

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


@csrf_exempt
def proxy(request: HttpRequest, path: str) -> HttpResponseBase:
    call = _Call(
        request_id=uuid.uuid4(),
        started=time.monotonic(),
        dialect=dialects.dialect_for_path(
            path, anthropic_version=request.META.get("HTTP_ANTHROPIC_VERSION")
        ),
        method=(request.method or "GET")[:10],  # the row's column; longer is refused below
        path=_printable(request.path_info),
    )
    try:
        response = _serve(request, call)
    except REFUSED as exc:
        response = _refuse(call, refusal_for(exc), write_row=not isinstance(exc, DatabaseError))
    except Exception:
        logger.exception("proxy failure on request %s", call.request_id)
        response = _refuse(call, INTERNAL, write_row=True)
    # The only headers a /v1 answer may carry (gatewaysite.middleware.ProxyAnswerHeaders).
    response.proxy_headers = frozenset(name.lower() for name in response.headers)
    return response


def _serve(request: HttpRequest, call: _Call) -> HttpResponseBase:
    meta = request.META

    # 1. read the request
    if call.method not in ALLOWED_METHODS:
        raise MethodNotAllowed(f"The method {call.method} is not allowed")
    target = forward.upstream_target(
        raw_uri=meta.get("RAW_URI") or request.path_info,
        path_info=request.path_info,
        query=meta.get("QUERY_STRING", ""),
        script_name=meta.get("SCRIPT_NAME", ""),
    )

    # 2. authenticate
    grant = key_authenticate(
        raw_key=dialects.presented_key(
            authorization=meta.get("HTTP_AUTHORIZATION"), x_api_key=meta.get("HTTP_X_API_KEY")
        )
    )
    call.api_key_id = grant.id
    if request.path_info == "/v1/upstreams" and call.method == "GET":
        return _upstream_names(call, grant)

    # 3. choose the upstream
    route = upstream_choose(
        upstream_ids=grant.upstream_ids,
        requested_name=meta.get("HTTP_X_UPSTREAM_NAME") or None,
        dialect=call.dialect,
    )
    call.upstream_id = route.id
    secret_name, secret_value = dialects.secret_header(provider=route.provider, secret=route.secret)

    # 4. read the body, holding no database connection while it arrives
    body = None
    if meta.get("CONTENT_LENGTH") or meta.get("HTTP_TRANSFER_ENCODING"):
        _release_db_connection()
        body = forward.read_body(
            meta,
            limit=settings.PROXY_MAX_BODY_BYTES,
            timeout=settings.PROXY_BODY_TIMEOUT,
            min_rate=settings.PROXY_BODY_MIN_RATE,
        )
        model, call.is_stream = peek_request(body, meta.get("CONTENT_TYPE", ""))
        call.model = _printable(model)

    # 5. open the log row, then let go of the database connection
    call.log_id = log_open(
        request_id=call.request_id,
        method=call.method,
        path=call.path,
        api_key_id=call.api_key_id,
        upstream_id=call.upstream_id,
        model=call.model,
        is_stream=call.is_stream,
    )
    _release_db_connection()

    # 6. forward
    read_timeout = min(
        route.timeout or settings.PROXY_DEFAULT_TIMEOUT, settings.PROXY_MAX_STREAM_SECONDS
    )
    answer = forward.upstream_send(
        method=call.method,
        url=forward.upstream_url(base_url=route.base_url, target=target),
        headers={**forward.request_headers(meta), secret_name: secret_value},
        body=body,
        connect_timeout=min(settings.PROXY_CONNECT_TIMEOUT, read_timeout),
        read_timeout=read_timeout,
    )
    if not 100 <= answer.status <= 599 or not forward.printable_reason(answer.reason):
        answer.close()
        raise UpstreamUnreachable("The upstream's answer was not valid HTTP")
    answer.mask_echoed_secret(secret=route.secret, mask=secret_hint(route.secret))

    # 7. relay, and 8. finish the row when the answer ends (Relay calls _finisher)
    relay = Relay(
        answer=answer,
        usage=UsageFeed(
            usage_reader(
                content_type=answer.header("Content-Type"),
                dialect=call.dialect,
                content_encoding=answer.header("Content-Encoding"),
            ),
            request_id=call.request_id,
        ),
        started=call.started,
        headers_at=time.monotonic(),
        read_timeout=read_timeout,
        deadline=call.started + settings.PROXY_MAX_STREAM_SECONDS,
        on_end=_finisher(call),
        drop_client=_client_dropper(meta),
        request_id=call.request_id,
    )
    response = ProxiedResponse(
        relay,
        status=answer.status,
        reason=answer.reason,
        headers=forward.response_headers(answer.headers),
    )
    if answer.header("Content-Type").lower().startswith("text/event-stream"):
        response["X-Accel-Buffering"] = "no"
    response[REQUEST_ID_HEADER] = str(call.request_id)
    return response


def _upstream_names(call: _Call, grant: KeyGrant) -> HttpResponse:
    names = upstream_names_for(upstream_ids=grant.upstream_ids)
    log_record(
        request_id=call.request_id,
        method=call.method,
        path=call.path,
        status_code=200,
        duration_ms=call.elapsed_ms(),
        api_key_id=call.api_key_id,
    )
    return _json(call, 200, json.dumps({"upstreams": names}).encode("utf-8"))


def _finisher(call: _Call):
    def finish(ending: Ending) -> None:
        try:
            log_finish(
                log_id=call.log_id,  # type: ignore[arg-type]
                status_code=ending.status,
                duration_ms=ending.duration_ms,
                ttfb_ms=ending.ttfb_ms,
                error=ending.error,
                **ending.usage.as_log_fields(),
            )
        except DatabaseError:
            logger.warning(
                "request %s ended (%s) but its log row could not be finished: database unavailable",
                call.request_id,
                ending.status,
            )

    return finish


def _refuse(call: _Call, refusal: Refusal, *, write_row: bool) -> HttpResponse:
    """The gateway's own error answer, in the caller's dialect, with its row written."""
    if write_row:
        _write_refusal_row(call, refusal)
    body = dialects.error_body(
        dialect=call.dialect, status=refusal.status, code=refusal.code, message=refusal.message
    )
    # Status 0 (the client left while sending): the row says no answer came; the
    # answer below goes nowhere, but a WSGI answer needs a real status.
    return _json(call, refusal.status or 400, body)


def _write_refusal_row(call: _Call, refusal: Refusal) -> None:
    try:
        if call.log_id is not None:
            log_finish(
                log_id=call.log_id,
                status_code=refusal.status,
                duration_ms=call.elapsed_ms(),
                error=refusal.message,
            )
        else:
            log_record(
                request_id=call.request_id,
                method=call.method,
                path=call.path,
                status_code=refusal.status,
                duration_ms=call.elapsed_ms(),
                error=refusal.message,
                api_key_id=call.api_key_id,
                upstream_id=call.upstream_id,
                model=call.model,
                is_stream=call.is_stream,
            )
    except DatabaseError:
        logger.warning(
            "request %s refused (%s) but its log row could not be written: database unavailable",
            call.request_id,
            refusal.code,
        )


def _json(call: _Call, status: int, body: bytes) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    response[REQUEST_ID_HEADER] = str(call.request_id)
    return response


def _client_dropper(environ):
    """A way to end the client's connection abruptly, when the server offers its socket.

    gunicorn does (`gunicorn.socket`). A shutdown, not a close: the server still owns
    the socket; its next write fails quietly (EPIPE) and it lets the connection go.
    """
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return None
    return lambda: sock.shutdown(socket.SHUT_RDWR)


def _release_db_connection() -> None:
    # PostgreSQL: the pool has a few connections per worker and a stream can last
    # minutes, so the request must not hold one while it waits on the upstream;
    # log_finish takes one again at the end. SQLite has no pool and nothing to
    # release (a file handle), while reopening would cost a file open and PRAGMAs.
    if connection.vendor != "sqlite":
        connection.close()


def _printable(text: str) -> str:
    # Control characters (a NUL above all, which PostgreSQL refuses in text) are
    # percent-encoded in what the row keeps.
    return _UNPRINTABLE.sub(lambda m: f"%{ord(m.group()):02X}", text)
