"""The proxy's routes (mounted under /v1/): every path, every method, one view."""

from django.urls import re_path

from proxy import views

urlpatterns = [
    # (?s): a decoded path may hold a newline (%0a); it must still reach the view,
    # which refuses it in the caller's dialect rather than Django's HTML 404.
    re_path(r"^(?P<path>(?s:.*))\Z", views.proxy, name="proxy"),
]
