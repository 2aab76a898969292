"""Admin API routes of the logs app (mounted under /admin/): /admin/logs and /admin/logs/{id}.

This module is included last under /admin/, so it also ends the admin API's URL
space: any other /admin/… path is a 404 (403 without the token) in the API's
error shape, not Django's HTML page.
"""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from gatewaysite.api.viewsets import AdminNotFoundView
from logs.api.views import RequestLogViewSet, UsageView

router = SimpleRouter(trailing_slash=False)
router.register("logs", RequestLogViewSet, basename="admin-logs")

urlpatterns = [
    path("usage", UsageView.as_view()),
    *router.urls,
    re_path(r"^.*$", AdminNotFoundView.as_view()),
]
