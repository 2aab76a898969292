"""Admin API routes of the upstreams app (mounted under /admin/)."""

urlpatterns: list = []
