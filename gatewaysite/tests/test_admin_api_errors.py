"""How every kind of failure maps to the admin API's one error shape (a table), and
that an unexpected failure is a JSON 500 that says nothing of its cause."""

from __future__ import annotations

import pytest
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf

from gatewaysite.api.exceptions import admin_exception_handler
from keys.exceptions import InvalidUpstreams, KeyNotRotatable, MissingUpstreams
from upstreams.exceptions import InvalidUpstreamData, UpstreamNameTaken


@pytest.mark.parametrize(
    ("exc", "status", "code", "details"),
    [
        (drf.ValidationError({"name": ["bad"]}), 400, "validation_error", {"name": ["bad"]}),
        (drf.ValidationError(["bad"]), 400, "validation_error", {"non_field_errors": ["bad"]}),
        (drf.ValidationError({"upstream_ids": [drf.ErrorDetail("x", code="required")]}), 400,
         "missing_upstreams", {"upstream_ids": ["x"]}),
        (drf.ValidationError({"upstream_ids": [drf.ErrorDetail("x", code="empty")]}), 400,
         "missing_upstreams", {"upstream_ids": ["x"]}),
        (drf.ValidationError({"upstream_ids": {"0": [drf.ErrorDetail("x", code="invalid")]}}),
         400, "validation_error", {"upstream_ids": {"0": ["x"]}}),
        (drf.ParseError("JSON parse error"), 400, "parse_error", None),
        (drf.NotAuthenticated(), 403, "forbidden", None),
        (drf.AuthenticationFailed(), 403, "forbidden", None),
        (drf.PermissionDenied(), 403, "forbidden", None),
        (DjangoPermissionDenied(), 403, "forbidden", None),
        (drf.NotFound(), 404, "not_found", None),
        (Http404(), 404, "not_found", None),
        (ObjectDoesNotExist(), 404, "not_found", None),
        (drf.MethodNotAllowed("PUT"), 405, "method_not_allowed", None),
        (drf.NotAcceptable(), 406, "not_acceptable", None),
        (drf.UnsupportedMediaType("text/plain"), 415, "unsupported_media_type", None),
        (drf.Throttled(wait=3), 429, "throttled", None),
        (MissingUpstreams("none"), 400, "missing_upstreams", None),
        (InvalidUpstreams(["a", "b"]), 400, "invalid_upstream", {"upstream_ids": ["a", "b"]}),
        (KeyNotRotatable("revoked"), 409, "conflict", None),
        (UpstreamNameTaken({"name": ["taken"]}), 409, "conflict", {"name": ["taken"]}),
        (InvalidUpstreamData({"base_url": ["bad"]}), 400, "validation_error",
         {"base_url": ["bad"]}),
        (IntegrityError("UNIQUE constraint failed: upstreams_upstream.name"), 409, "conflict",
         None),
        (OperationalError("could not connect"), 503, "service_unavailable", None),
        (InterfaceError("connection already closed"), 503, "service_unavailable", None),
        (DataError("value too long for type character varying"), 500, "internal_error", None),
        (RuntimeError("sk-live-secret in a message"), 500, "internal_error", None),
    ],
)  # fmt: skip
def test_each_failure_has_its_status_and_code(exc, status, code, details):
    response = admin_exception_handler(exc, {"request": None})
    assert response.status_code == status
    body = response.data
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    assert body.get("details") == details
    assert set(body) <= {"error", "message", "details"}
    if status == 500 or isinstance(exc, (IntegrityError, OperationalError)):
        assert str(exc) not in str(body)  # the cause goes to the server log, not the client
    if isinstance(exc, drf.Throttled):
        assert response["Retry-After"] == "3"


@pytest.mark.django_db
def test_an_unexpected_failure_in_a_view_is_a_json_500(api, make_upstream, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("boom sk-should-not-leak")

    monkeypatch.setattr("upstreams.api.views.services.upstream_deactivate", broken)
    up = make_upstream()
    response = api.delete(f"/admin/upstreams/{up.pk}")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "internal_error",
                               "message": "Internal error; see the server log"}  # fmt: skip
    assert "boom" in caplog.text  # logged for the operator, with its traceback
