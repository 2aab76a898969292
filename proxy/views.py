"""/v1/<path>: one proxied request, from its URL to its log row.

The recipe, in order (`_serve`):
  1. read the request: the path must stay inside any upstream's base_url
  2. authenticate the key                       keys.selectors.key_authenticate
     and note it was used (at most once a minute)      keys.services.key_touch
  3. give the database connection back (a body may trickle in for a long time),
     then read the body (up to PROXY_MAX_BODY_BYTES, within PROXY_BODY_TIMEOUT and
     above PROXY_BODY_MIN_RATE) and peek at `model` and `stream`
  4. choose the candidates: the key's model allowlist, then the upstreams that serve
     the model, by priority, weight and health   upstreams.selectors.upstream_candidates
     (/v1/models and /v1/upstreams are answered here, after step 5: proxy.catalog)
  5. admit it against the key's limits, reserving its worst case
                                                limits.services.limits_admission
  6. open the log row (in flight)               logs.services.log_open
     with the admission in the same write when the counters are in the database
     (one round trip for both; a refused request's row is then finished as refused)
     and give the database connection back: the answer may take minutes
  7. forward, with failover while nothing was sent back    proxy.failover
     each attempt: the upstream's alias (proxy.aliases), OpenAI stream usage
     (proxy.stream_usage), its secret; once      proxy.forward.upstream_send
  8. relay the answer as it arrives             proxy.relay.Relay
  9. finish the row when the answer ends, however it ends     logs.services.log_finish
     priced for the model sent to the upstream that answered, at the prices in force then
     (the worker's copy, checked in the row's own write: priced again if it changed)
                                    prices.selectors.price_quote, price_for, prices.cost
     and settle the reservation to what was recorded, in the row's own write
                                                limits.services.limits_settle_statements
     and count it in /metrics, as the row records it     gatewaysite.metrics.request_finished

A request refused before step 7 gets one finished row (logs.services.log_record) and
an error in the caller's dialect; so does one whose upstream cannot be reached.
Every path that
admits a request settles it exactly once, whatever follows (`_settle`).
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
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from gatewaysite import metrics
from gatewaysite.logfilters import request_id_bind
from keys.cache import KeyGrant
from keys.selectors import key_authenticate
from keys.services import key_touch
from limits.services import (
    limits_admission,
    limits_reprice_statements,
    limits_settle,
    limits_settle_statements,
)
from logs.services import log_finish, log_open, log_open_along, log_record
from prices.cost import cost_usd
from prices.selectors import price_for, price_quote, prices_version_sql
from proxy import dialects, forward
from proxy.aliases import with_model
from proxy.catalog import models_answer
from proxy.errors import (
    INTERNAL,
    REFUSED,
    MethodNotAllowed,
    Refusal,
    UpstreamUnreachable,
    refusal_for,
)
from proxy.failover import AllAttemptsFailed, AttemptTimedOut, Sent, forward_with_failover
from proxy.peek import peek_request
from proxy.relay import Ending, ProxiedResponse, Relay, UsageFeed
from proxy.stream_usage import UsageChunkFilter, with_stream_usage
from proxy.upstream_error import ErrorCapture, upstream_error_message
from proxy.usage import usage_reader
from upstreams.crypto import secret_hint
from upstreams.exceptions import UpstreamUnavailable
from upstreams.routing import upstream_model as upstream_model_for
from upstreams.selectors import (
    upstream_candidates,
    upstream_choose,
    upstream_names_for,
    upstream_routes_for,
)

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
    upstream_name: str = ""  # the metrics' label
    model: str = ""
    is_stream: bool = False
    log_id: int | None = None
    ticket: object | None = None  # the limits reservation, until settled
    # The upstream's error answer, kept to read its error.message for the row.
    error_body: ErrorCapture | None = None
    error_encoding: str = ""
    secret: str = field(default="", repr=False)
    counted: bool = False  # in /metrics, exactly once
    # Failover: upstreams tried, "name: reason" of each that failed, the model sent upstream.
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    upstream_model: str = ""

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


def _call_for(request: HttpRequest, path: str) -> _Call:
    return _Call(
        request_id=uuid.uuid4(),
        started=time.monotonic(),
        dialect=dialects.dialect_for_path(
            path, anthropic_version=request.META.get("HTTP_ANTHROPIC_VERSION")
        ),
        method=(request.method or "GET")[:10],  # the row's column; longer is refused below
        path=_printable(request.path_info),
    )


@csrf_exempt
def proxy(request: HttpRequest, path: str) -> HttpResponseBase:
    call = _call_for(request, path)
    request_id_bind(call.request_id)  # every log line about this request names it
    metrics.request_started()
    try:
        response = _serve(request, call)
    except REFUSED as exc:
        refusal = refusal_for(exc)
        _settle(call, status=refusal.status)
        # The database down before the row was opened: no row to write. Once opened, it
        # is finished whatever failed (its write guards itself: _write_refusal_row).
        opened = call.log_id is not None
        response = _refuse(call, refusal, write_row=opened or not isinstance(exc, DatabaseError))
    except Exception:
        logger.exception("proxy failure on request %s", call.request_id)
        _settle(call, status=INTERNAL.status)
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
    key_touch(grant=grant)

    # 3. read the body, and admit the request against the key's limits
    body = None
    if meta.get("CONTENT_LENGTH") or meta.get("HTTP_TRANSFER_ENCODING"):
        _release_db_connection()  # hold no database connection while the body arrives
        body = forward.read_body(
            meta,
            limit=settings.PROXY_MAX_BODY_BYTES,
            timeout=settings.PROXY_BODY_TIMEOUT,
            min_rate=settings.PROXY_BODY_MIN_RATE,
        )
        model, call.is_stream = peek_request(body, meta.get("CONTENT_TYPE", ""))
        call.model = _printable(model)
    # 4. choose the candidates: the key's allowlist, then the upstreams serving the model
    local = _local_answer(request, call)
    candidates = None
    if local is None:
        candidates = upstream_candidates(
            upstream_ids=grant.upstream_ids,
            requested_name=meta.get("HTTP_X_UPSTREAM_NAME") or None,
            dialect=call.dialect,
            model=call.model,
            allowed_models=grant.models,
        )
        call.upstream_id = candidates.routes[0].id
        call.upstream_name = candidates.routes[0].name

    # 5. admit it against the key's limits, reserving its worst case
    admission = limits_admission(
        key_id=grant.id,
        model=call.model,
        body=body,
        upstream_ids=grant.upstream_ids,
        routes=candidates.routes if candidates else (),
    )
    if local is not None:
        call.ticket = admission.admit() if admission is not None else None
        return local(request, call, grant)

    # 6. open the log row (with the admission, when the counters are in the database:
    # one round trip for both), then let go of the database connection
    _admit_and_open(call, admission)
    _release_db_connection()

    # 7. forward, with failover to the next candidate while nothing was sent back
    try:
        outcome = forward_with_failover(
            candidates=candidates.routes,  # type: ignore[union-attr]
            pinned=candidates.pinned,  # type: ignore[union-attr]
            attempt=_attempt(request, call, target, body),
            max_attempts=settings.PROXY_MAX_ATTEMPTS,
            deadline=call.started + settings.PROXY_MAX_STREAM_SECONDS,
        )
    except (AllAttemptsFailed, AttemptTimedOut) as exc:
        call.attempts, call.upstream_id = exc.attempts, exc.last_route.id
        call.upstream_name = exc.last_route.name
        raise
    # Recording a failure or a recovery (upstreams.health) may have taken a connection
    # again; the relay must not hold one.
    _release_db_connection()
    sent, answer, route = outcome.sent, outcome.sent.answer, outcome.sent.route
    call.upstream_id, call.attempts, call.failures = route.id, outcome.attempts, outcome.failures
    call.upstream_name = route.name
    call.upstream_model = sent.extra["upstream_model"]

    # 8. relay, and 9. finish the row when the answer ends (Relay calls _finisher)
    reader = usage_reader(
        content_type=answer.header("Content-Type"),
        dialect=call.dialect,
        content_encoding=answer.header("Content-Encoding"),
    )
    if answer.status >= 400:
        reader = call.error_body = ErrorCapture(reader)
        call.error_encoding = answer.header("Content-Encoding")
        call.secret = route.secret
    relay = Relay(
        answer=answer,
        usage=UsageFeed(reader, request_id=call.request_id),
        started=call.started,
        headers_at=time.monotonic(),
        read_timeout=sent.extra["read_timeout"],
        deadline=call.started + settings.PROXY_MAX_STREAM_SECONDS,
        on_end=_finisher(call),
        drop_client=_client_dropper(meta),
        request_id=call.request_id,
        chunk_filter=_usage_chunk_filter(answer) if sent.extra["injected"] else None,
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


def _admit_and_open(call: _Call, admission) -> None:
    """Steps 5 and 6: the admission and the in-flight row. Admitted with the row's insert,
    a refused request already has its row, which the refusal finishes."""
    opening = {
        "request_id": call.request_id,
        "method": call.method,
        "path": call.path,
        "api_key_id": call.api_key_id,
        "upstream_id": call.upstream_id,
        "model": call.model,
        "is_stream": call.is_stream,
    }
    along = admission.in_database() if admission is not None else None
    if along is None:  # no limits, or the counters are in Redis
        call.ticket = admission.admit() if admission is not None else None
        call.log_id = log_open(**opening)
        return
    call.log_id, outcome = log_open_along(along=along, **opening)
    call.ticket = along.ticket(outcome)


def _attempt(request: HttpRequest, call: _Call, target: str, body: bytes | None):
    """One try on one upstream: its model name (alias), its stream-usage option, its
    secret; sent once; the answer's headers checked and an echoed secret masked."""
    meta = request.META
    client_headers = forward.request_headers(meta)

    def attempt(route, seconds_left: float) -> Sent:
        routed, upstream_model = body, ""
        if call.model and body and call.model in route.aliases:
            upstream_model = upstream_model_for(route, call.model)
            routed = with_model(body, upstream_model) or body
        injected = _stream_usage_asked(request, call, route, routed)
        if injected is not None:
            routed = injected
        secret_name, secret_value = dialects.secret_header(
            provider=route.provider, secret=route.secret
        )
        read_timeout = max(
            min(
                route.timeout or settings.PROXY_DEFAULT_TIMEOUT,
                settings.PROXY_MAX_STREAM_SECONDS,
                seconds_left,
            ),
            0.001,
        )
        answer = forward.upstream_send(
            method=call.method,
            url=forward.upstream_url(base_url=route.base_url, target=target),
            headers={**client_headers, secret_name: secret_value},
            body=routed,
            connect_timeout=min(settings.PROXY_CONNECT_TIMEOUT, read_timeout),
            read_timeout=read_timeout,
        )
        if not 100 <= answer.status <= 599 or not forward.printable_reason(answer.reason):
            answer.close()
            raise UpstreamUnreachable(
                "The upstream's answer was not valid HTTP", reason="invalid HTTP answer"
            )
        answer.mask_echoed_secret(secret=route.secret, mask=secret_hint(route.secret))
        return Sent(
            route,
            answer,
            {
                "upstream_model": upstream_model,
                "injected": injected is not None,
                "read_timeout": read_timeout,
            },
        )

    return attempt


def _local_answer(request: HttpRequest, call: _Call):
    """The gateway's own answer for /v1/upstreams and /v1/models[/{id}], or None."""
    if call.method != "GET":
        return None
    path = request.path_info
    if path == "/v1/upstreams":
        return lambda request, call, grant: _upstream_names(call, grant)
    if path == "/v1/models" or path.startswith("/v1/models/"):
        return _models
    return None


def _stream_usage_asked(request: HttpRequest, call: _Call, route, body: bytes | None):
    """The body asking an OpenAI chat stream for its usage, or None to send it as it came."""
    if not (
        body
        and call.is_stream
        and call.dialect == "openai"
        and request.path_info.endswith("/chat/completions")
        and settings.PROXY_FORCE_STREAM_USAGE
        and route.inject_stream_usage
    ):
        return None
    return with_stream_usage(body)


def _usage_chunk_filter(answer) -> UsageChunkFilter | None:
    # Only an event stream as sent (not compressed) can have the added chunk taken out.
    if not answer.header("Content-Type").lower().startswith("text/event-stream"):
        return None
    if answer.header("Content-Encoding").strip().lower() not in ("", "identity"):
        return None
    return UsageChunkFilter()


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
    _settle(call, status=200)
    _count(call, status=200, duration_ms=call.elapsed_ms())
    return _json(call, 200, json.dumps({"upstreams": names}).encode("utf-8"))


def _models(request: HttpRequest, call: _Call, grant: KeyGrant) -> HttpResponse:
    """GET /v1/models[/{id}]: the models this key may use, in the caller's dialect."""
    model_id = (
        request.path_info[len("/v1/models/") :] if request.path_info != "/v1/models" else None
    )
    pinned = request.META.get("HTTP_X_UPSTREAM_NAME")
    if pinned:  # narrowed to one upstream, with the same refusals as any pinned request
        routes = [
            upstream_choose(upstream_ids=grant.upstream_ids, requested_name=pinned, dialect="")
        ]
    else:
        routes = upstream_routes_for(upstream_ids=grant.upstream_ids)
    if not routes:
        raise UpstreamUnavailable("No upstream this key may use is available")
    status, body = models_answer(
        routes=routes,
        allowed_models=grant.models,
        dialect=call.dialect,
        model_id=model_id,
    )
    log_record(
        request_id=call.request_id,
        method=call.method,
        path=call.path,
        status_code=status,
        duration_ms=call.elapsed_ms(),
        api_key_id=call.api_key_id,
        error="" if status == 200 else "model_not_found",
    )
    _settle(call, status=status)
    _count(call, status=status, duration_ms=call.elapsed_ms())
    return _json(call, status, body)


def _finisher(call: _Call):
    def finish(ending: Ending) -> None:
        cost, ticket, settlement = None, call.ticket, []
        try:
            quote = _quote(call, ending)
            cost = cost_usd(rates=quote.rates, usage=ending.usage) if quote else None
            settlement = _settlement(call, ending, cost)
            row = _row_ending(call, ending)
            written = log_finish(
                **row,
                cost_usd=cost,
                also=settlement,
                only_if=(prices_version_sql(), quote.version) if quote else None,
            )
            if not written:
                # The prices changed since this worker loaded them: the row is still
                # unfinished and the settlement was made at the old cost.
                cost = _reprice(call, ending, ticket, row, cost)
        except DatabaseError:
            # The settlement was lost with the row's write: it is made on its own below.
            # (With the counters in Redis there were no writes: it settled there already.)
            if settlement:
                call.ticket = ticket
            logger.warning(
                "request %s ended (%s) but its log row could not be finished: database unavailable",
                call.request_id,
                ending.status,
            )
        _settle(call, status=ending.status, total_tokens=ending.usage.total_tokens, cost=cost)
        _count(
            call,
            status=ending.status,
            duration_ms=ending.duration_ms,
            ttfb_ms=ending.ttfb_ms,
            usage=ending.usage,
            cost=cost,
        )

    return finish


def _row_ending(call: _Call, ending: Ending) -> dict:
    """What the request's finished row records, but its cost."""
    return {
        "log_id": call.log_id,
        "status_code": ending.status,
        "duration_ms": ending.duration_ms,
        "ttfb_ms": ending.ttfb_ms,
        "error": _error_text(call, ending.error or _upstream_error(call, ending.status)),
        "upstream_id": call.upstream_id,
        "upstream_model": call.upstream_model,
        "attempts": call.attempts,
        **ending.usage.as_log_fields(),
    }


def _count(call: _Call, *, status: int, duration_ms, ttfb_ms=None, usage=None, cost=None) -> None:
    """Count the request in /metrics with what its row records, once whatever ends it."""
    if call.counted:
        return
    call.counted = True
    metrics.request_finished(
        upstream=call.upstream_name,
        dialect=call.dialect,
        status=status,
        duration_seconds=None if duration_ms is None else duration_ms / 1000,
        ttfb_seconds=None if ttfb_ms is None else ttfb_ms / 1000,
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        cache_read_tokens=getattr(usage, "cache_read_tokens", None),
        cache_write_tokens=getattr(usage, "cache_write_tokens", None),
        cost_usd=cost,
    )


def _error_text(call: _Call, error: str) -> str:
    """The row's error: the failed attempts before the answer (if any), then its own error."""
    if call.attempts <= 1 or not call.failures:
        return error
    tried = "; ".join(call.failures)
    return f"{tried}; {error}" if error and error not in tried else tried


def _settlement(call: _Call, ending: Ending, cost) -> list[tuple[str, list]]:
    """Takes the request's reservation: the writes that settle it with the row's last one."""
    ticket, call.ticket = call.ticket, None
    if ticket is None:
        return []
    return limits_settle_statements(
        ticket=ticket,  # type: ignore[arg-type]
        status=ending.status,
        total_tokens=ending.usage.total_tokens,
        cost_usd=cost,
    )


def _upstream_error(call: _Call, status: int) -> str:
    """For an upstream's error answer: its own error.message (never a secret), else "".

    A 401 or 403 answers the gateway's own secret (the client's key never goes upstream),
    so the row says so: an operator can tell a bad upstream secret from a bad client key.
    """
    if call.error_body is None:
        return ""
    message = upstream_error_message(
        bytes(call.error_body.head),
        content_encoding=call.error_encoding,
        secret=call.secret,
        secret_mask=secret_hint(call.secret),
    )
    if status in (401, 403):
        logger.warning(
            "upstream %s refused the gateway's credentials (%s): check its api_key",
            call.upstream_name,
            status,
        )
        refused = f"the upstream refused the gateway's credentials ({status})"
        return f"{refused}: {message}" if message else refused
    return message


def _quote(call: _Call, ending: Ending):
    """The rates of the request's cost from the worker's copy of the prices (None: no
    usage to price). The row's write then reads which prices are in force (_reprice)."""
    if ending.usage.prompt_tokens is None or ending.usage.completion_tokens is None:
        return None  # no price lookup for answers without usage
    # The model the answering upstream was sent (after its alias), at its prices.
    return price_quote(model=call.upstream_model or call.model, upstream_id=call.upstream_id)


def _reprice(call: _Call, ending: Ending, ticket, row: dict, cost):
    """The row's write found other prices in force than the worker's copy: the cost at
    those prices, the row finished with it, and the spend of the reservation that write
    settled changed to it, in one write. Once per price change per worker.

    A database error here leaves the row unfinished, as one in log_finish would; the
    settlement was made (at the old cost), so it is not made again.
    """
    try:
        rates = price_for(model=call.upstream_model or call.model, upstream_id=call.upstream_id)
        fresh = cost_usd(rates=rates, usage=ending.usage)
        also = []
        if ticket is not None:
            also = limits_reprice_statements(
                ticket=ticket,
                status=ending.status,
                total_tokens=ending.usage.total_tokens,
                cost_before=cost,
                cost_after=fresh,
            )
        log_finish(**row, cost_usd=fresh, also=also)
    except DatabaseError:
        logger.warning(
            "request %s ended (%s) but its log row could not be finished: database unavailable",
            call.request_id,
            ending.status,
        )
        return cost
    return fresh


def _settle(call: _Call, *, status: int, total_tokens: int | None = None, cost=None) -> None:
    """Replace the request's reservation (if its key has limits) with what it recorded."""
    ticket, call.ticket = call.ticket, None
    if ticket is None:
        return
    try:
        limits_settle(
            ticket=ticket,  # type: ignore[arg-type]
            status=status,
            total_tokens=total_tokens,
            cost_usd=cost,
        )
    except DatabaseError:
        # The reservation expires on its own within PROXY_MAX_STREAM_SECONDS.
        logger.warning(
            "request %s ended but its reservation could not be settled: database unavailable",
            call.request_id,
        )


def proxy_refusal(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """A /v1 refusal raised before the view could run (Django's 400/403/404/500 handlers):
    the same answer, headers and row as a refusal raised inside it."""
    path = request.path_info
    call = _call_for(request, path[len("/v1/") :] if path.startswith("/v1/") else "")
    metrics.request_started()  # the view never started it; _refuse finishes it
    response = _refuse(call, refusal, write_row=True)
    response.proxy_headers = frozenset(name.lower() for name in response.headers)
    return response


def _refuse(call: _Call, refusal: Refusal, *, write_row: bool) -> HttpResponse:
    """The gateway's own error answer, in the caller's dialect, with its row written."""
    if refusal.cause:
        logger.error("upstream %s: %s", call.upstream_name or "?", refusal.cause)
    if write_row:
        _write_refusal_row(call, refusal)
    metrics.request_refused(code=refusal.code)
    _count(call, status=refusal.status, duration_ms=call.elapsed_ms())
    body = dialects.error_body(
        dialect=call.dialect, status=refusal.status, code=refusal.code, message=refusal.message
    )
    # Status 0 (the client left while sending): the row says no answer came; the
    # answer below goes nowhere, but a WSGI answer needs a real status.
    response = _json(call, refusal.status or 400, body)
    if refusal.retry_after is not None:
        response["Retry-After"] = str(refusal.retry_after)
    return response


def _write_refusal_row(call: _Call, refusal: Refusal) -> None:
    try:
        if call.log_id is not None:
            log_finish(
                log_id=call.log_id,
                status_code=refusal.status,
                duration_ms=call.elapsed_ms(),
                error=refusal.cause or refusal.message,
                upstream_id=call.upstream_id,
                attempts=call.attempts,
            )
        else:
            log_record(
                request_id=call.request_id,
                method=call.method,
                path=call.path,
                status_code=refusal.status,
                duration_ms=call.elapsed_ms(),
                error=refusal.cause or refusal.message,
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
