"""Admin API routes of the keys app (mounted under /admin/): /admin/keys, /admin/keys/{id},
/admin/keys/{id}/rotate. No trailing slashes."""

from rest_framework.routers import SimpleRouter

from keys.api.views import KeyViewSet

router = SimpleRouter(trailing_slash=False)
router.register("keys", KeyViewSet, basename="admin-keys")

urlpatterns = router.urls
