"""Django's last-resort error views, in JSON on the API surfaces.

Most errors on /v1/ and /admin/ are answered by the proxy's and the admin API's own
error writers. These handlers catch what happens before a view runs (a Host header
not in ALLOWED_HOSTS, a URL that resolves nowhere, an unexpected exception) so an API
client never gets an HTML page; the admin site and other pages keep Django's views.
"""

from django.http import HttpResponse, JsonResponse
from django.views import defaults

from proxy.errors import Refusal
from proxy.views import proxy_refusal


def _api_error(request, status: int, code: str, message: str) -> HttpResponse | None:
    path = request.path_info
    if path == "/v1" or path.startswith("/v1/"):
        return _proxy_error(request, status, code, message)
    if path.startswith("/admin/") or path in ("/admin", "/openapi.json", "/healthz", "/readyz"):
        return JsonResponse({"error": code, "message": message}, status=status)
    return None


def _proxy_error(request, status: int, code: str, message: str) -> HttpResponse:
    # The proxy's own refusal writer: its dialect, its row, its headers.
    return proxy_refusal(request, Refusal(status, code, message))


def bad_request(request, exception, template_name="400.html"):
    return _api_error(request, 400, "invalid_request", "Bad request") or defaults.bad_request(
        request, exception, template_name
    )


def permission_denied(request, exception, template_name="403.html"):
    return _api_error(request, 403, "forbidden", "Forbidden") or defaults.permission_denied(
        request, exception, template_name
    )


def page_not_found(request, exception, template_name="404.html"):
    return _api_error(request, 404, "not_found", "Not found") or defaults.page_not_found(
        request, exception, template_name
    )


def server_error(request, template_name="500.html"):
    return _api_error(
        request, 500, "internal_error", "The gateway failed to answer"
    ) or defaults.server_error(request, template_name)


def admin_api_root(request):
    """`/admin` alone: a JSON 404 rather than APPEND_SLASH's HTML redirect."""
    return _api_error(request, 404, "not_found", "Not found")
