"""Admin API routes of the prices app (mounted under /admin/): /admin/prices[/{id}]."""

from rest_framework.routers import SimpleRouter

from prices.api.views import PriceViewSet

router = SimpleRouter(trailing_slash=False)
router.register("prices", PriceViewSet, basename="admin-prices")

urlpatterns = router.urls
