"""Middleware of the gateway's own."""

from __future__ import annotations

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
