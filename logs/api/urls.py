"""Admin API routes of the logs app (mounted under /admin/)."""

urlpatterns: list = []
