"""The dialect rules and the refusal table, as tables."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError

from keys.exceptions import KeyExpired, KeyInvalid, KeyMissing
from proxy import dialects
from proxy.errors import (
    BodyTooLarge,
    InvalidPath,
    UpstreamTimeout,
    UpstreamUnreachable,
    refusal_for,
)
from upstreams.crypto import SecretUnreadable
from upstreams.exceptions import UnknownUpstream, UpstreamForbidden, UpstreamUnavailable


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("messages", "anthropic"),
        ("messages/count_tokens", "anthropic"),
        ("messages/batches/abc", "anthropic"),
        ("chat/completions", "openai"),
        ("responses", "openai"),
        ("models", "openai"),
        ("messagesx", "openai"),
        ("", "openai"),
        ("threads/t1/messages", "openai"),  # OpenAI's Assistants API has messages too
    ],
)
def test_dialect_for_path(path, dialect):
    assert dialects.dialect_for_path(path) == dialect


@pytest.mark.parametrize("path", ["models", "files", "chat/completions", "messages"])
def test_the_anthropic_version_header_makes_any_path_anthropic(path):
    assert dialects.dialect_for_path(path, anthropic_version="2023-06-01") == "anthropic"


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "presented"),
    [
        (None, None, None),
        ("", "", None),
        ("Bearer sk-auto-abc", None, "sk-auto-abc"),
        ("bearer  sk-auto-abc ", None, "sk-auto-abc"),
        (None, "sk-auto-abc", "sk-auto-abc"),
        ("Bearer sk-auto-abc", "sk-auto-other", "sk-auto-abc"),  # Bearer wins
        ("Bearer", None, "Bearer"),  # malformed: present, so refused as invalid, not missing
        ("Bearer ", None, "Bearer "),
        ("Basic dXNlcjpw", None, "Basic dXNlcjpw"),
        ("Basic dXNlcjpw", "sk-auto-abc", "sk-auto-abc"),  # another scheme: the x-api-key
        ("Bearer", "sk-auto-abc", "sk-auto-abc"),
    ],
)
def test_presented_key(authorization, x_api_key, presented):
    assert dialects.presented_key(authorization=authorization, x_api_key=x_api_key) == presented


@pytest.mark.parametrize(
    ("provider", "header"),
    [
        ("openai", ("Authorization", "Bearer sk-up")),
        ("anthropic", ("x-api-key", "sk-up")),
        ("azure", ("api-key", "sk-up")),
    ],
)
def test_secret_header(provider, header):
    assert dialects.secret_header(provider=provider, secret="sk-up") == header


def test_error_bodies_in_each_dialect():
    openai_body = json.loads(
        dialects.error_body(dialect="openai", status=401, code="invalid_api_key", message="Nope")
    )
    assert openai_body == {
        "error": {
            "message": "Nope",
            "type": "authentication_error",
            "code": "invalid_api_key",
            "param": None,
        }
    }
    anthropic_body = json.loads(
        dialects.error_body(dialect="anthropic", status=502, code="bad_gateway", message="Down")
    )
    assert anthropic_body == {
        "type": "error",
        "error": {"type": "api_error", "message": "Down", "code": "bad_gateway"},
    }


@pytest.mark.parametrize(
    ("status", "code", "category"),
    [
        (401, "invalid_api_key", "authentication_error"),
        (401, "api_key_expired", "authentication_error"),
        (403, "model_not_allowed", "permission_error"),
        (404, "model_not_found", "not_found_error"),
        (413, "request_too_large", "request_too_large"),
        (429, "budget_exceeded", "rate_limit_error"),
        (400, "unknown_upstream", "invalid_request_error"),
        (405, "method_not_allowed", "invalid_request_error"),
        (408, "request_timeout", "invalid_request_error"),
        (502, "bad_gateway", "api_error"),
        (503, "service_unavailable", "api_error"),
        (504, "gateway_timeout", "api_error"),
    ],
)
def test_anthropic_errors_carry_anthropic_categories_and_our_code(status, code, category):
    body = json.loads(
        dialects.error_body(dialect="anthropic", status=status, code=code, message="m")
    )
    assert body == {"type": "error", "error": {"type": category, "message": "m", "code": code}}


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (KeyMissing("No API key provided"), 401, "missing_api_key"),
        (KeyInvalid("Invalid API key"), 401, "invalid_api_key"),
        (KeyExpired("API key has expired"), 401, "api_key_expired"),
        (UnknownUpstream("x", ["a"]), 400, "unknown_upstream"),
        (UpstreamForbidden("no"), 403, "forbidden"),
        (UpstreamUnavailable("off"), 503, "service_unavailable"),
        (SecretUnreadable("bad token"), 503, "service_unavailable"),
        (OperationalError("connection refused"), 503, "service_unavailable"),
        (InvalidPath("bad path"), 400, "invalid_request"),
        (BodyTooLarge("too big"), 413, "request_too_large"),
        (UpstreamUnreachable("down"), 502, "bad_gateway"),
        (UpstreamTimeout("slow"), 504, "gateway_timeout"),
    ],
)
def test_refusal_table(exc, status, code):
    refusal = refusal_for(exc)
    assert (refusal.status, refusal.code) == (status, code)


def test_refusals_never_repeat_internal_messages():
    # A database or crypto message could name a host or a token: the caller gets ours.
    assert "connection refused" not in refusal_for(OperationalError("connection refused")).message
    assert "token" not in refusal_for(SecretUnreadable("bad token")).message
