"""The admin API's one error shape: ``{"error": code, "message": text, "details": ...}``.

Every failure of an admin view comes through here, DRF's own (validation,
parsing, auth, 404, 405...) and our typed ones (keys.exceptions,
upstreams.exceptions), so no bad input can end as a 500 or an HTML page.
Messages never carry a secret: they name ids and fields, never values.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from gatewaysite.api.auth import FORBIDDEN_MESSAGE
from keys.exceptions import (
    InvalidKeyData,
    InvalidModels,
    InvalidUpstreams,
    KeyNotRotatable,
    MissingUpstreams,
)
from limits.exceptions import InvalidLimits
from upstreams.exceptions import InvalidUpstreamData, UpstreamNameTaken

logger = logging.getLogger(__name__)

MISSING_UPSTREAMS_MESSAGE = "At least one upstream id (or name, in upstreams) is required"
# A validation error on upstream_ids of one of these kinds is the contract's missing_upstreams.
_MISSING_CODES = {"required", "empty", "null"}


class AdminAPIError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _codes(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_codes(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_codes(v) for v in value)) if value else set()
    return {str(value)}


def _from_validation(exc: drf.ValidationError) -> AdminAPIError:
    details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    codes = exc.get_codes()
    if (
        isinstance(codes, dict)
        and (_codes(codes.get("upstream_ids", [])) | _codes(codes.get("upstreams", [])))
        & _MISSING_CODES
    ):
        return AdminAPIError(400, "missing_upstreams", MISSING_UPSTREAMS_MESSAGE, details)
    fields = ", ".join(str(f) for f in details)
    return AdminAPIError(400, "validation_error", f"Invalid input: {fields}", details)


def _translate(exc: Exception) -> AdminAPIError | None:
    match exc:
        case drf.ValidationError():
            return _from_validation(exc)
        case drf.NotAuthenticated() | drf.AuthenticationFailed() | drf.PermissionDenied():
            return AdminAPIError(403, "forbidden", FORBIDDEN_MESSAGE)
        case DjangoPermissionDenied():
            return AdminAPIError(403, "forbidden", FORBIDDEN_MESSAGE)
        case drf.NotFound():
            return AdminAPIError(404, "not_found", str(exc.detail))
        case Http404() | ObjectDoesNotExist():
            return AdminAPIError(404, "not_found", "Not found.")
        case drf.ParseError():
            return AdminAPIError(400, "parse_error", str(exc.detail))
        case drf.APIException():
            return AdminAPIError(exc.status_code, exc.default_code, str(exc.detail))
        # Our own typed failures carry their code; here each class gets its status.
        case MissingUpstreams():
            return AdminAPIError(400, exc.code, MISSING_UPSTREAMS_MESSAGE)
        case InvalidUpstreams():
            return AdminAPIError(
                400, exc.code, "Unknown or inactive upstream ids", {"upstream_ids": exc.ids}
            )
        case InvalidModels():
            return AdminAPIError(400, exc.code, "Invalid input: models", {"models": exc.errors})
        case KeyNotRotatable():
            return AdminAPIError(409, exc.code, str(exc))
        case InvalidKeyData():
            fields = ", ".join(exc.errors)
            return AdminAPIError(400, exc.code, f"Invalid input: {fields}", exc.errors)
        case InvalidLimits():
            fields = ", ".join(exc.errors)
            return AdminAPIError(400, exc.code, f"Invalid input: {fields}", exc.errors)
        case UpstreamNameTaken():
            return AdminAPIError(
                409, exc.code, "An upstream with this name already exists", exc.errors
            )
        case InvalidUpstreamData():
            fields = ", ".join(exc.errors)
            return AdminAPIError(400, exc.code, f"Invalid input: {fields}", exc.errors)
        case IntegrityError():
            # A concurrent change won a uniqueness race (a name, the default): the caller may retry.
            logger.warning("admin API write refused by a constraint: %s", type(exc).__name__)
            return AdminAPIError(409, "conflict", "The change conflicts with a concurrent change")
        case OperationalError() | InterfaceError():
            return AdminAPIError(503, "service_unavailable", "The database is not available")
    return None


def admin_exception_handler(exc: Exception, context: dict) -> Response:
    error = exc if isinstance(exc, AdminAPIError) else _translate(exc)
    if error is None:
        request = context.get("request")
        logger.exception(
            "admin API error on %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
        )
        error = AdminAPIError(500, "internal_error", "Internal error; see the server log")
    set_rollback()
    body = {"error": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    headers = {}
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(body, status=error.status, headers=headers)
