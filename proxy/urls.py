"""The proxy's routes (mounted under /v1/): every path, every method, one view."""

from django.urls import re_path

from proxy import views

urlpatterns = [
    re_path(r"^(?P<path>.*)$", views.proxy, name="proxy"),
]
