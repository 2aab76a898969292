"""Admin API routes of the upstreams app (mounted under /admin/): /admin/upstreams and
/admin/upstreams/{id}. No trailing slashes."""

from rest_framework.routers import SimpleRouter

from upstreams.api.views import UpstreamViewSet

router = SimpleRouter(trailing_slash=False)
router.register("upstreams", UpstreamViewSet, basename="admin-upstreams")

urlpatterns = router.urls
