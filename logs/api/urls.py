"""Admin API routes of the logs app (mounted under /admin/): /admin/logs, /admin/logs/{id}
and /admin/usage."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from logs.api.views import RequestLogViewSet, UsageView

router = SimpleRouter(trailing_slash=False)
router.register("logs", RequestLogViewSet, basename="admin-logs")

urlpatterns = [
    path("usage", UsageView.as_view()),
    *router.urls,
]
