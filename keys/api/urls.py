"""Admin API routes of the keys app (mounted under /admin/)."""

urlpatterns: list = []
