"""The admin API's one door: ``Authorization: Bearer <ADMIN_TOKEN>``.

DRF's Session and Basic authentication are not configured anywhere, so a Django
session (even a superuser's) or a Basic header opens nothing. Every refusal is
the same 403, whatever was wrong: no header, another scheme, a wrong, non-ASCII
or 8 KB token, or an empty ADMIN_TOKEN (the API is then closed to everyone).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

# DRF's settings import this module while rest_framework.views loads: import nothing
# that imports DRF views (the schema extension for this door lives in schema.py).

FORBIDDEN_MESSAGE = "Admin access required"


class AdminOperator:
    """Whoever holds the admin token. Not a database user: the token is the identity."""

    is_authenticated = True
    is_anonymous = False
    username = "admin-token"

    def __str__(self) -> str:
        return self.username


def token_matches(header: str | None) -> bool:
    """True when the Authorization header carries exactly the configured admin token."""
    expected = settings.ADMIN_TOKEN.encode("utf-8")
    if not expected or not header:
        return False
    try:
        # WSGI hands headers over as latin-1 text: this gives back the bytes sent.
        raw = header.encode("latin-1")
    except UnicodeEncodeError:
        return False
    scheme, _, token = raw.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(token.strip(b" \t"), expected)


class AdminTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        if token_matches(request.META.get("HTTP_AUTHORIZATION")):
            return AdminOperator(), None
        # None, not an exception: the permission below refuses, with one message for all.
        return None

    def authenticate_header(self, request):
        # No WWW-Authenticate challenge: DRF then answers 403, as the contract says, not 401.
        return None


class IsAdminOperator(BasePermission):
    message = FORBIDDEN_MESSAGE

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, AdminOperator)
