"""Middleware of the gateway's own."""

from __future__ import annotations

from django.core.exceptions import BadRequest

# Django's CommonMiddleware sets the length of a whole (not streamed) answer.
_FRAMING = frozenset({"content-length"})


class ProxyAnswerHeadersMiddleware:
    """A /v1 answer carries only the headers the proxy gave it.

    The proxy marks its answers with `proxy_headers` (the names it set: the upstream's
    headers and the gateway's documented ones). Whatever the middleware inside added
    since, a CSRF cookie, `Vary: Cookie`, browser security headers meant for the admin
    site, is taken off again: a proxied answer is the upstream's, not the admin's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        kept = getattr(response, "proxy_headers", None)
        if kept is not None:
            kept = kept | _FRAMING
            for name in [n for n in response.headers if n.lower() not in kept]:
                del response.headers[name]
            response.cookies.clear()
        return response


class NulInQueryMiddleware:
    """A NUL in a query value (`?model=a%00b`) is a 400 outside /v1.

    PostgreSQL refuses NUL in text, so an admin list filtered by one would end as a 500;
    no field the admin filters on can hold one. /v1 passes its query string upstream as is.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith("/v1") and any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            raise BadRequest("A query value holds a NUL character")
        return self.get_response(request)
