"""The proxy's routes (mounted under /v1/)."""

urlpatterns: list = []
