"""The whole URL map."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from gatewaysite import errors, health, metrics
from proxy import views as proxy_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("django-admin/", admin.site.urls),
    path("admin", errors.admin_api_root),
    path("admin/", include("keys.api.urls")),
    path("admin/", include("upstreams.api.urls")),
    path("admin/", include("prices.api.urls")),
    path("admin/", include("logs.api.urls")),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="swagger-ui"),
    # "/v1" alone would otherwise be redirected (HTML 301) to "/v1/" by APPEND_SLASH;
    # the proxy refuses it in the caller's dialect like any other path it cannot forward.
    path("v1", proxy_views.proxy, {"path": ""}),
    path("v1/", include("proxy.urls")),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
