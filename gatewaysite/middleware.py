"""Middleware of the gateway's own."""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.db import OperationalError
from django.http import HttpResponse, JsonResponse

from gatewaysite.versioning import versions_read_once

# Django's CommonMiddleware sets the length of a whole (not streamed) answer.
_FRAMING = frozenset({"content-length"})


class ProxyAnswerHeadersMiddleware:
    """A /v1 answer carries only the headers the proxy gave it, and its request reads
    every version row in one query (gatewaysite.versioning.versions_read_once).

    The proxy marks its answers with `proxy_headers` (the names it set: the upstream's
    headers and the gateway's documented ones). Whatever the middleware inside added
    since, a CSRF cookie, `Vary: Cookie`, browser security headers meant for the admin
    site, is taken off again: a proxied answer is the upstream's, not the admin's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/v1/"):
            # Until the view returns (a streamed answer's end is priced after it).
            with versions_read_once():
                response = self.get_response(request)
        else:
            response = self.get_response(request)
        kept = getattr(response, "proxy_headers", None)
        if kept is not None:
            kept = kept | _FRAMING
            for name in [n for n in response.headers if n.lower() not in kept]:
                del response.headers[name]
            response.cookies.clear()
        return response


class ProxyShortcutMiddleware:
    """/v1 goes straight to the proxy's view, past the middleware below it and URL
    resolution.

    What lies below serves the admin site (sessions, CSRF, authentication, messages,
    static files, framing headers); a proxied request uses none of it, and
    ProxyAnswerHeadersMiddleware takes off whatever headers it adds. What a /v1 request
    still needs from it is done here: the Host check (ALLOWED_HOSTS, as CommonMiddleware
    does) and the length of a whole answer. Middleware that must see /v1 requests goes
    above this one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if not (path == "/v1" or path.startswith("/v1/")):
            return self.get_response(request)
        from proxy.views import proxy  # the URL map's own view for /v1 and /v1/<path>

        request.get_host()  # DisallowedHost: Django's 400, as for any other path
        response = proxy(request, path=path[4:])
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response


class NulInQueryMiddleware:
    """A NUL in a query value (`?model=a%00b`) on the admin site is a 400.

    PostgreSQL refuses NUL in text, so an admin list filtered by one would end as a 500;
    no field the admin filters on can hold one. (The admin API refuses it in its filters,
    with its own validation_error; /v1 passes its query string upstream as is.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/django-admin/") and any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            raise BadRequest("A query value holds a NUL character")
        return self.get_response(request)


_UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Database unavailable</title></head>
<body><h1>Database unavailable</h1>
<p>The gateway's database is unavailable right now. Try again in a moment.</p></body></html>
"""


class DatabaseUnavailableMiddleware:
    """A page that failed because the database is away is a 503 that says so, not a 500.

    The proxy and the admin API answer their own database errors; this covers the
    admin site (its sign-in form above all) and any other page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError):
            return None
        if request.path_info.startswith("/admin") or request.path_info in ("/readyz",):
            return JsonResponse(
                {"error": "service_unavailable", "message": "The database is not available"},
                status=503,
            )
        return HttpResponse(_UNAVAILABLE_PAGE, status=503, content_type="text/html")
