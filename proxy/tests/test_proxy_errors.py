"""Every error the gateway answers itself: status, code, the caller's dialect, and its log row."""

from __future__ import annotations

import datetime as dt

import anthropic
import openai
import pytest
import requests
from django.db import transaction
from django.utils import timezone

from keys.models import APIKey, KeyringVersion
from keys.secrets import hash_key
from keys.services import key_revoke, key_update
from logs.models import RequestLog
from proxy import dialects
from testing.helpers import finished_row, free_port
from upstreams.services import upstream_deactivate

CHAT_BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES_BODY = {
    "model": "claude-test",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "hi"}],
}


def post(gateway, path: str, *, headers=None, json=CHAT_BODY, **kwargs) -> requests.Response:
    return requests.post(
        f"{gateway.url}{path}", json=json, headers=headers or {}, timeout=15, **kwargs
    )


def openai_error(response: requests.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    return response.status_code, error["code"]


def anthropic_error(response: requests.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message", "code"}
    # Anthropic's own category for the status; the gateway's code beside it.
    assert body["error"]["type"] == dialects.anthropic_error_type(response.status_code)
    return response.status_code, body["error"]["code"]


def test_no_key_is_401_missing_api_key_in_both_dialects(gateway, openai_route, provider):
    response = post(gateway, "/v1/chat/completions")
    assert openai_error(response) == (401, "missing_api_key")
    response = post(gateway, "/v1/messages", json=MESSAGES_BODY)
    assert anthropic_error(response) == (401, "missing_api_key")
    assert provider.requests == []
    row = finished_row(response.headers["x-gateway-request-id"])
    assert (row.status_code, row.api_key_id, row.upstream_id) == (401, None, None)
    assert row.error == "No API key provided"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer sk-auto-" + "A" * 43},  # well formed, unknown
        {"Authorization": "Bearer sk-auto-" + "A" * 42 + "é"},  # non-ASCII (latin-1 on the wire)
        {"Authorization": b"Bearer sk-auto-" + "ключ".encode()},  # UTF-8 bytes
        {"Authorization": "Bearer " + "k" * 10_240},
        {"x-api-key": "sk-auto-short"},
        {"x-api-key": "sk-auto-" + "A" * 43 + " extra"},
    ],
    ids=["bare", "bare-space", "basic", "unknown", "latin1", "utf8", "10kb", "short", "spaces"],
)
def test_every_malformed_key_gets_the_same_401(gateway, openai_route, headers):
    response = post(gateway, "/v1/chat/completions", headers=headers)
    assert openai_error(response) == (401, "invalid_api_key")
    assert response.json() == {
        "error": {
            "message": "Invalid API key",
            "type": "authentication_error",
            "code": "invalid_api_key",
            "param": None,
        }
    }


def test_the_stored_hash_is_not_a_key(gateway, openai_route):
    for headers in (
        {"Authorization": f"Bearer {hash_key(openai_route.raw_key)}"},
        {"x-api-key": hash_key(openai_route.raw_key)},
    ):
        assert openai_error(post(gateway, "/v1/chat/completions", headers=headers)) == (
            401,
            "invalid_api_key",
        )


def test_revoked_and_expired_keys(gateway, make_route):
    revoked = make_route()
    key_revoke(actor="tests", key=revoked.key)
    with pytest.raises(openai.AuthenticationError) as exc:
        revoked.openai().chat.completions.create(**CHAT_BODY)
    assert exc.value.code == "invalid_api_key"

    expired = make_route(provider="anthropic")
    # An expiry passes with time; no service sets one in the past, so it is set by hand.
    with transaction.atomic():
        APIKey.objects.filter(pk=expired.key.pk).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1)
        )
        KeyringVersion.bump()
    with pytest.raises(anthropic.AuthenticationError) as exc:
        expired.anthropic().messages.create(**MESSAGES_BODY)
    assert exc.value.body["error"]["type"] == "authentication_error"
    assert exc.value.body["error"]["code"] == "api_key_expired"
    row = finished_row(exc.value.response.headers["x-gateway-request-id"])
    assert (row.status_code, row.api_key_id) == (401, None)


def test_unknown_upstream_name_lists_only_the_keys_own_names(
    gateway, make_route, make_upstream, provider
):
    route = make_route(name="mine")
    make_upstream(name="someone-elses")
    with pytest.raises(openai.BadRequestError) as exc:
        route.openai().chat.completions.create(
            **CHAT_BODY, extra_headers={"X-Upstream-Name": "nope"}
        )
    assert exc.value.code == "unknown_upstream"
    message = exc.value.body["message"]
    assert "mine" in message and "someone-elses" not in message
    row = finished_row(exc.value.response.headers["x-gateway-request-id"])
    assert (row.status_code, row.api_key_id, row.upstream_id) == (400, route.key.pk, None)
    assert provider.requests == []


def test_an_upstream_the_key_may_not_use_is_403(gateway, make_route, make_upstream, provider):
    route = make_route(provider="anthropic")
    make_upstream(name="forbidden-one", provider="anthropic", base_url=provider.base_url)
    with pytest.raises(anthropic.PermissionDeniedError) as exc:
        route.anthropic().messages.create(
            **MESSAGES_BODY, extra_headers={"X-Upstream-Name": "forbidden-one"}
        )
    assert exc.value.body["error"]["type"] == "permission_error"
    assert exc.value.body["error"]["code"] == "forbidden"
    assert provider.requests == []


def test_an_inactive_permitted_upstream_is_503(gateway, make_route, provider):
    route = make_route()
    upstream_deactivate(actor="tests", upstream=route.upstream)
    for headers in ({}, {"X-Upstream-Name": route.upstream.name}):
        response = post(
            gateway,
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {route.raw_key}", **headers},
        )
        assert openai_error(response) == (503, "service_unavailable")
    assert provider.requests == []


def test_without_an_upstream_of_the_dialect_the_key_s_own_upstream_is_used(
    gateway, openai_route, provider
):
    response = post(
        gateway, "/v1/messages", json=MESSAGES_BODY, headers={"x-api-key": openai_route.raw_key}
    )
    assert response.status_code == 200
    assert provider.requests[-1].headers["authorization"] == f"Bearer {openai_route.secret}"


def test_anthropic_clients_reach_an_anthropic_upstream_on_shared_paths(
    gateway, make_route, make_upstream, provider
):
    route = make_route(provider="openai", is_default=True)
    anthropic_up = make_upstream(provider="anthropic", base_url=provider.base_url, timeout=5)
    key_update(actor="tests", key=route.key, upstream_ids=[route.upstream.pk, anthropic_up.pk])
    response = requests.get(
        f"{gateway.url}/v1/models",
        headers={"x-api-key": route.raw_key, "anthropic-version": "2023-06-01"},
        timeout=15,
    )
    assert response.status_code == 200
    assert "x-api-key" in provider.requests[-1].headers
    assert "authorization" not in provider.requests[-1].headers


def test_permission_change_takes_effect_at_once(gateway, make_route, make_upstream, provider):
    route = make_route(name="first")
    second = make_upstream(name="second", base_url=provider.base_url)
    headers = {"Authorization": f"Bearer {route.raw_key}", "X-Upstream-Name": "second"}
    assert post(gateway, "/v1/chat/completions", headers=headers).status_code == 403
    key_update(actor="tests", key=route.key, upstream_ids=[route.upstream.pk, second.pk])
    assert post(gateway, "/v1/chat/completions", headers=headers).status_code == 200
    key_update(actor="tests", key=route.key, upstream_ids=[route.upstream.pk])
    assert post(gateway, "/v1/chat/completions", headers=headers).status_code == 403


def test_unreachable_upstream_is_502_in_both_dialects(gateway, make_route):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    route = make_route(base_url=dead)
    with pytest.raises(openai.InternalServerError) as exc:
        route.openai().chat.completions.create(**CHAT_BODY)
    assert (exc.value.status_code, exc.value.code) == (502, "bad_gateway")
    row = finished_row(exc.value.response.headers["x-gateway-request-id"])
    assert (row.status_code, row.upstream_id) == (502, route.upstream.pk)
    assert "ConnectionRefusedError" in row.error
    assert dead not in row.error

    route = make_route(provider="anthropic", base_url=dead)
    with pytest.raises(anthropic.InternalServerError) as exc:
        route.anthropic().messages.create(**MESSAGES_BODY)
    assert (exc.value.status_code, exc.value.body["error"]["type"]) == (502, "api_error")
    assert exc.value.body["error"]["code"] == "bad_gateway"


def test_upstream_silent_before_headers_is_504(gateway, make_route, provider):
    route = make_route(timeout=1)
    with pytest.raises(openai.APIStatusError) as exc:
        route.openai().chat.completions.create(
            **CHAT_BODY, extra_headers={"x-fake-scenario": "stall-headers"}
        )
    assert (exc.value.status_code, exc.value.code) == (504, "gateway_timeout")
    row = finished_row(exc.value.response.headers["x-gateway-request-id"])
    assert row.status_code == 504 and "1 seconds" in row.error
    assert 900 <= row.duration_ms < 5000
    # The gateway gave up on the upstream connection; it was not left hanging.
    assert provider.wait_for_disconnects(1, timeout=5)


def test_upstream_errors_pass_through_unchanged_with_retry_after(
    gateway, openai_route, anthropic_route
):
    with pytest.raises(openai.RateLimitError) as exc:
        openai_route.openai().chat.completions.create(
            **CHAT_BODY, extra_headers={"x-fake-status": "429"}
        )
    assert exc.value.response.headers["retry-after"] == "7"
    assert exc.value.body["type"] == "rate_limit_error"  # the provider's own body, not ours
    assert exc.value.response.headers["x-request-id"].startswith("fake-")
    row = finished_row(exc.value.response.headers["x-gateway-request-id"])
    # The contract: the row keeps the upstream's own error.message.
    assert (row.status_code, row.error) == (429, "Fake error 429")

    with pytest.raises(anthropic.RateLimitError) as exc:
        anthropic_route.anthropic().messages.create(
            **MESSAGES_BODY, extra_headers={"x-fake-status": "429"}
        )
    assert exc.value.response.headers["retry-after"] == "7"
    assert exc.value.body["error"]["type"] == "rate_limit_error"


def test_every_answer_names_its_log_row(gateway, openai_route):
    answers = [
        post(gateway, "/v1/chat/completions"),
        post(
            gateway,
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {openai_route.raw_key}"},
        ),
        post(
            gateway,
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {openai_route.raw_key}", "x-fake-status": "500"},
        ),
    ]
    ids = [a.headers["x-gateway-request-id"] for a in answers]
    for request_id, answer in zip(ids, answers, strict=True):
        assert finished_row(request_id).status_code == answer.status_code
    assert RequestLog.objects.count() == len(answers)
