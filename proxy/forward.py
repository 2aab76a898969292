"""The upstream call: what goes upstream, how it is sent, and what comes back to the client.

The only module that imports urllib3. One connection pool per upstream origin per worker
process, made on first use after the fork, each large, so nothing persists between
callers (no cookie jar), nothing comes from the environment (no proxies, no .netrc), no
redirect is followed, no request is retried once sent, and no header the client did not
send is added except the upstream's secret and its Host. Certificates are checked
against certifi's bundle, as with `requests` before, which wrapped each call in a
prepared request, a Response, a cookie jar and header dicts the proxy never used:
5-6% of a warm request's instructions (bench/instructions.py, docs/performance.md).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import certifi
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, connection_from_url
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import SKIP_HEADER, Retry

from proxy.errors import (
    BodyTooLarge,
    ClientGone,
    InvalidPath,
    MalformedBody,
    RequestTimeout,
    StreamBroken,
    UpstreamConnectTimeout,
    UpstreamTimeout,
    UpstreamUnreachable,
)

POOL_MAXSIZE = 1000  # connections kept per upstream host, per worker (gevent: one per stream)
POOL_HOSTS = 100  # upstream hosts whose pools a worker keeps
# Largest single read; a read returns whatever has arrived, it never waits to fill.
READ_SIZE = 64 * 1024
# How much of a non-2xx answer is searched for an echo of the upstream's secret.
MASK_LIMIT = 64 * 1024

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream besides hop-by-hop ones: the client's credentials, our own
# routing header, framing we recompute, and Expect (the body is already read).
_NOT_FORWARDED = HOP_BY_HOP | {
    "authorization",
    "x-api-key",
    "x-upstream-name",
    "host",
    "content-length",
    "expect",
    # The admin site's session and CSRF cookies share the gateway's origin.
    "cookie",
}

# Answer headers the gateway sets itself; an upstream's own copy would only confuse.
_SET_BY_GATEWAY = frozenset({"x-gateway-request-id", "x-accel-buffering"})
# Answer headers that would act on the gateway's origin (an upstream's cookie would
# reach /django-admin/; its HSTS would pin the gateway's host to HTTPS).
_NOT_PASSED_BACK = frozenset({"set-cookie", "strict-transport-security"})

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-zA-Z]+")
_HEADER_VALUE_RE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")
_REASON_RE = re.compile(r"[ \t\x21-\x7e]*")
# In the raw path: anything that could climb out of base_url once some server decodes it.
_RAW_PATH_FORBIDDEN = re.compile(r"%(?:2e|2f|5c|00|25)|\\|[\x00-\x20\x7f]", re.IGNORECASE)


# --- the request -----------------------------------------------------------------


def upstream_target(*, raw_uri: str, path_info: str, query: str, script_name: str = "") -> str:
    """The part of a /v1/ request that goes after an upstream's base_url: `path?query`.

    The path is taken raw (as the client sent it, percent-encodings kept) and must
    not contain dot segments, empty segments, backslashes, NULs, control characters
    or encoded dots, slashes, backslashes or percent signs, raw or decoded; else
    InvalidPath. The query string is kept as sent.
    """
    raw_path = raw_uri.split("?", 1)[0].split("#", 1)[0]
    if script_name and raw_path.startswith(script_name):
        raw_path = raw_path[len(script_name) :]
    if not raw_path.startswith("/v1/") or not path_info.startswith("/v1/"):
        raise InvalidPath("The request path is not valid")
    relative = raw_path[len("/v1/") :]
    _check_path(relative)
    _check_path(path_info[len("/v1/") :])
    return f"{relative}?{query}" if query else relative


def upstream_url(*, base_url: str, target: str) -> str:
    return f"{base_url.rstrip('/')}/{target}"


def _check_path(path: str) -> None:
    if _RAW_PATH_FORBIDDEN.search(path):
        raise InvalidPath("The request path is not valid")
    segments = path.split("/")
    # An empty segment anywhere ("//", a leading "/") or a dot segment could change
    # which resource, or which host, a lenient server resolves.
    if path and any(s in ("", ".", "..") for s in segments[:-1]):
        raise InvalidPath("The request path is not valid")
    if segments[-1] in (".", ".."):
        raise InvalidPath("The request path is not valid")


def request_headers(environ: Mapping[str, object]) -> dict[str, str]:
    """The client's headers as they go upstream, minus everything in _NOT_FORWARDED and
    any header the client's Connection header names. The secret is added by the caller."""
    named = {
        token.strip().lower()
        for token in str(environ.get("HTTP_CONNECTION", "")).split(",")
        if token.strip()
    }
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-")
        elif key == "CONTENT_TYPE" and value:
            name = "Content-Type"
        else:
            continue
        lower = name.lower()
        if lower in _NOT_FORWARDED or lower.startswith("proxy-") or lower in named:
            continue
        headers[name.title()] = str(value)
    return headers


def read_body(
    environ: Mapping[str, object],
    *,
    limit: int,
    timeout: float | None = None,
    min_rate: int | None = None,
) -> bytes:
    """The whole request body, refused over `limit` bytes.

    Read straight from wsgi.input: Django's upload limit must not apply, and a
    chunked body (no Content-Length) must be forwarded intact, never as empty.
    With `timeout`, the body must be complete within `timeout` seconds plus one second
    per `min_rate` bytes received so far, else RequestTimeout. A body that ends
    before its Content-Length is ClientGone: a short body is never forwarded.
    """
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    length = None
    if declared:
        try:
            length = int(declared)
        except ValueError:
            raise MalformedBody("The Content-Length header is not valid") from None
        if length < 0:
            raise MalformedBody("The Content-Length header is not valid")
        if length > limit:
            raise BodyTooLarge(f"The request body is larger than {limit} bytes")
    stream = environ["wsgi.input"]
    parts: list[bytes] = []
    total = 0
    started = time.monotonic()
    try:
        while True:
            size = min(READ_SIZE, limit + 1 - total)
            if length is not None:
                size = min(size, length - total)
            if timeout is None:
                part = stream.read(size)  # type: ignore[attr-defined]
            else:
                allowed = timeout + (total / min_rate if min_rate else 0.0)
                part = _read_within(environ, stream, size, started + allowed)
            if not part:
                break
            parts.append(part)
            total += len(part)
            if total > limit:
                raise BodyTooLarge(f"The request body is larger than {limit} bytes")
            if length is not None and total >= length:
                break
    except OSError:
        raise ClientGone("client disconnected") from None
    except (BodyTooLarge, ClientGone, RequestTimeout):
        raise
    except Exception:
        # The server's reader refuses malformed chunked framing with its own errors.
        raise MalformedBody("The request body is not valid HTTP framing") from None
    if length is not None and total < length:
        raise ClientGone("client disconnected")
    return b"".join(parts)


def _read_within(environ: Mapping[str, object], stream, size: int, deadline: float) -> bytes:
    """One read of the body that gives up at `deadline` (monotonic).

    Under gevent a Timeout bounds the whole read (gunicorn's reader may recv many
    times to fill `size`, so a per-recv socket timeout alone could be stretched by a
    byte at a time); elsewhere the socket's timeout bounds each recv.
    """
    remaining = deadline - time.monotonic()
    sock = environ.get("gunicorn.socket")
    if remaining <= 0:
        _stop_reading(sock)
        raise RequestTimeout("The request body did not arrive in time")
    if _gevent_sockets():
        import gevent

        timer = gevent.Timeout(remaining)
        timer.start()
        try:
            return stream.read(size)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            _stop_reading(sock)
            raise RequestTimeout("The request body did not arrive in time") from None
        finally:
            timer.close()
    if sock is None:
        return stream.read(size)
    sock.settimeout(remaining)  # type: ignore[attr-defined]
    try:
        return stream.read(size)
    except TimeoutError:
        _stop_reading(sock)
        raise RequestTimeout("The request body did not arrive in time") from None
    finally:
        sock.settimeout(None)  # type: ignore[attr-defined]


def _gevent_sockets() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")


def _stop_reading(sock) -> None:
    # The rest of a timed-out body must not be read as the connection's next request:
    # with its read side shut, the server closes the connection after the 408.
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass


# --- the transport -----------------------------------------------------------------


class _Transport:
    pid: int | None = None
    # origin ("https://host:port", as in the upstream's base_url) -> its pool, least
    # recently used first
    pools: OrderedDict[str, HTTPConnectionPool] = OrderedDict()
    lock = threading.Lock()


# A request that was sent is never sent again; a failure comes back as MaxRetryError
# with the cause as its reason; a redirect is answered to the client as it came.
_NO_RETRIES = Retry(total=0, read=False, redirect=False, raise_on_redirect=False)


def _split_url(url: str) -> tuple[str, str]:
    """("scheme://host:port", "/path?query") of an upstream URL (upstream_url's: a base_url
    without credentials, query or fragment, then the target)."""
    path_at = url.find("/", url.find("://") + 3)
    if path_at < 0:
        return url, "/"
    return url[:path_at], url[path_at:]


def _pool(origin: str) -> HTTPConnectionPool:
    """The worker's pool for an origin. urllib3's PoolManager found it by parsing the URL
    and building a key of some thirty fields on every call: 3-6% of a warm request's
    instructions (bench/instructions.py), for the same few origins."""
    pid = os.getpid()
    if _Transport.pid != pid:
        with _Transport.lock:
            if _Transport.pid != pid:
                # Made anew after a fork: a pool's sockets must never be shared by two
                # processes.
                _Transport.pools = OrderedDict()
                _Transport.pid = pid
    pools = _Transport.pools
    pool = pools.get(origin)
    if pool is not None:
        with contextlib.suppress(KeyError):  # dropped by another thread meanwhile
            pools.move_to_end(origin)
        return pool
    with _Transport.lock:
        pool = pools.get(origin)
        if pool is None:
            options = {"maxsize": POOL_MAXSIZE, "block": False, "retries": _NO_RETRIES}
            if origin.startswith("https:"):
                options.update(cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
            pool = pools[origin] = connection_from_url(origin, **options)
            while len(pools) > POOL_HOSTS:
                # In-use connections of a dropped pool are closed when released.
                pools.popitem(last=False)[1].close()
    return pool


class UpstreamAnswer:
    """The upstream's answer once its headers arrived; the body is read with read_chunk()."""

    def __init__(self, response: urllib3.BaseHTTPResponse):
        self._raw = response
        self.status: int = response.status
        self.reason: str = response.reason or ""
        self.headers: list[tuple[str, str]] = list(response.headers.items())
        self._pending = b""  # bytes read ahead (mask_echoed_secret), relayed first
        self._pending_error: StreamBroken | None = None

    def header(self, name: str) -> str:
        return self._raw.headers.get(name, "")

    def mask_echoed_secret(self, *, secret: str, mask: str) -> None:
        """In a non-2xx answer, replace the upstream's own secret, if echoed, by its mask:
        in every header, and in the first MASK_LIMIT bytes of a body not content-encoded.

        A 2xx answer is never touched (it may stream for minutes and must not wait).
        """
        if 200 <= self.status < 300 or not secret:
            return
        self.headers = [(name, value.replace(secret, mask)) for name, value in self.headers]
        if self.header("Content-Encoding").strip().lower() not in ("", "identity"):
            return
        body = b""
        try:
            while len(body) <= MASK_LIMIT:
                chunk = self._read()
                if not chunk:
                    break
                body += chunk
        except StreamBroken as exc:
            self._pending_error = exc
        head, tail = body[: MASK_LIMIT + len(secret)], body[MASK_LIMIT + len(secret) :]
        masked = head.replace(secret.encode(), mask.encode())
        self._pending = masked + tail
        change = len(masked) - len(head)
        if change:
            self.headers = [
                (name, str(int(value) + change) if name.lower() == "content-length" else value)
                for name, value in self.headers
            ]

    def read_chunk(self) -> bytes:
        """The next bytes as they arrived (b"" at the end), undecoded.

        Raises StreamBroken(kind="timeout") when the upstream stays silent longer than
        the read timeout, StreamBroken(kind="broken") when its connection breaks or the
        answer ends before its framing says it is complete.
        """
        if self._pending:
            pending, self._pending = self._pending, b""
            return pending
        if self._pending_error is not None:
            raise self._pending_error
        return self._read()

    def _read(self) -> bytes:
        try:
            return self._raw.read1(READ_SIZE, decode_content=False)
        except ReadTimeoutError:
            raise StreamBroken("the upstream went silent", "timeout") from None
        except (Urllib3Error, OSError) as exc:
            raise StreamBroken(
                f"the upstream connection broke ({_cause_name(exc)})", "broken"
            ) from None

    def limit_next_wait(self, seconds: float) -> None:
        """Bound the wait for the next chunk (to honour a deadline for the whole answer)."""
        sock = getattr(self._raw.connection, "sock", None)
        if sock is not None:
            sock.settimeout(max(seconds, 0.001))

    def close(self) -> None:
        """Close the upstream connection now, unless the answer was read to its end
        (then the connection has already gone back to the pool)."""
        self._raw.close()  # drops the connection if it was not released at the end
        self._raw.release_conn()


_REASONS = {
    "ConnectionRefusedError": "connection refused",
    "ConnectionResetError": "connection reset",
    "gaierror": "name not resolved",
    "SSLError": "TLS failure",
    "SSLCertVerificationError": "TLS certificate not trusted",
}


def printable_reason(reason: str) -> bool:
    """Whether a reason phrase can be relayed as is (visible ASCII, spaces and tabs)."""
    return bool(_REASON_RE.fullmatch(reason))


def _cause_name(exc: BaseException) -> str:
    """The class name of what went wrong on the wire ("ConnectionRefusedError",
    "IncompleteRead", "gaierror"), found down the exception's chain.

    A name, never a message: messages can hold a URL.
    """
    seen = exc
    for _ in range(8):
        if isinstance(seen, (OSError, http.client.HTTPException)):
            break
        inner = seen.__cause__ or seen.__context__ or getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in seen.args if isinstance(a, BaseException)), None)
        if inner is None:
            break
        seen = inner
    return type(seen).__name__


def upstream_send(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    connect_timeout: float,
    read_timeout: float,
) -> UpstreamAnswer:
    """Send one request upstream, once, and wait for the answer's headers.

    Raises UpstreamUnreachable (refused, no route, TLS failure, dropped before
    answering) or UpstreamTimeout (no connection or no headers in time).
    """
    # Without these sentinels urllib3 and http.client would add User-Agent and
    # Accept-Encoding: identity on the client's behalf.
    headers = {**headers}
    lowered = {name.lower() for name in headers}
    for name in ("User-Agent", "Accept-Encoding"):
        if name.lower() not in lowered:
            headers[name] = SKIP_HEADER
    if body is not None:
        headers["Content-Length"] = str(len(body))
    origin, path = _split_url(url)
    try:
        response = _pool(origin).urlopen(
            method,
            path,
            body=body,
            headers=headers,
            assert_same_host=False,
            redirect=False,
            preload_content=False,
            decode_content=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            chunked=False,
        )
    except (Urllib3Error, OSError, ValueError) as exc:
        # Connection failures come wrapped in MaxRetryError; a read timeout as it is.
        failure = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
        if isinstance(failure, ConnectTimeoutError) and not isinstance(
            failure,
            NewConnectionError,  # urllib3 derives "refused" from the timeout
        ):
            raise UpstreamConnectTimeout(
                f"The upstream did not accept a connection within {connect_timeout:g} seconds"
            ) from None
        if isinstance(failure, ReadTimeoutError):
            raise UpstreamTimeout(
                f"The upstream did not answer within {read_timeout:g} seconds"
            ) from None
        cause = _cause_name(failure)
        raise UpstreamUnreachable(
            f"The upstream could not be reached ({cause})", reason=_REASONS.get(cause, cause)
        ) from None
    return UpstreamAnswer(response)


# --- the answer --------------------------------------------------------------------


def response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's headers as they go to the client: all but hop-by-hop ones, those
    its Connection header names, those the gateway sets itself, and any a WSGI server
    would refuse to send."""
    headers = list(headers)
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }
    chunked = any(name.lower() == "transfer-encoding" for name, _ in headers)
    kept = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower.startswith("proxy-") or lower in named:
            continue
        if lower in _SET_BY_GATEWAY or lower in _NOT_PASSED_BACK:
            continue
        if lower == "content-length" and chunked:
            continue  # RFC 9112: Transfer-Encoding wins; the length is meaningless
        if not _TOKEN_RE.fullmatch(name) or not _HEADER_VALUE_RE.fullmatch(value):
            continue
        kept.append((name, value))
    return kept
