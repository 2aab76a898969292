"""Routing by model through the live gateway: the official SDKs with only base_url and
a key, aliases, the key's allowlist, weights, GET /v1/models, the azure provider."""

from __future__ import annotations

import json
from collections import Counter

import anthropic
import openai
import pytest
import requests

from testing.fake_provider import FakeProvider
from testing.helpers import finished_row, free_port

CHAT = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def listing_provider():
    fp = FakeProvider(models=("listed-a", "listed-b", "other-c")).start()
    yield fp
    fp.stop()


def _key(make_key, *upstreams, **fields):
    return make_key(upstreams=list(upstreams), **fields)[1]


def _openai(gateway, raw_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=raw_key, max_retries=0, timeout=15)


def _anthropic(gateway, raw_key) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=raw_key, max_retries=0, timeout=15)


def test_each_model_reaches_its_upstream_with_the_sdks_and_no_header(
    gateway, provider, make_upstream, make_key
):
    gpt = make_upstream(name="gpt-side", base_url=provider.base_url, models=["gpt-*"])
    claude = make_upstream(
        name="claude-side", provider="anthropic", base_url=provider.base_url, models=["claude-*"]
    )
    raw = _key(make_key, gpt, claude)

    chat = _openai(gateway, raw).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=CHAT
    )
    message = _anthropic(gateway, raw).messages.with_raw_response.create(
        model="claude-sonnet-4", max_tokens=10, messages=CHAT
    )

    to_openai, to_anthropic = provider.requests
    assert to_openai.headers["authorization"].startswith("Bearer sk-upstream-")
    assert "x-api-key" not in to_openai.headers
    assert "x-api-key" in to_anthropic.headers and "authorization" not in to_anthropic.headers
    rows = [finished_row(r.headers["x-gateway-request-id"]) for r in (chat, message)]
    assert [(r.upstream_id, r.model, r.attempts) for r in rows] == [
        (gpt.pk, "gpt-4o", 1),
        (claude.pk, "claude-sonnet-4", 1),
    ]


def test_a_pinned_upstream_must_serve_the_model(gateway, provider, make_upstream, make_key):
    gpt = make_upstream(name="pin-gpt", base_url=provider.base_url, models=["gpt-*"])
    any_model = make_upstream(name="pin-any", base_url=provider.base_url)
    raw = _key(make_key, gpt, any_model)
    client = _openai(gateway, raw)
    client.chat.completions.create(
        model="claude-x", messages=CHAT, extra_headers={"X-Upstream-Name": "pin-any"}
    )
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(
            model="claude-x", messages=CHAT, extra_headers={"X-Upstream-Name": "pin-gpt"}
        )
    assert exc.value.code == "model_not_found"
    assert len(provider.requests) == 1


def test_the_key_allowlist_refuses_other_models_before_any_upstream(
    gateway, provider, make_upstream, make_key
):
    upstream = make_upstream(base_url=provider.base_url)
    raw = _key(make_key, upstream, models=["gpt-4o*", "secret-model-name"])
    client = _openai(gateway, raw)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=CHAT).choices
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.chat.completions.create(model="claude-opus", messages=CHAT)
    assert exc.value.code == "model_not_allowed"
    assert "claude-opus" in exc.value.message
    assert "secret-model-name" not in exc.value.message and "gpt-4o*" not in exc.value.message
    with pytest.raises(anthropic.PermissionDeniedError) as aexc:
        _anthropic(gateway, raw).messages.create(model="claude-opus", max_tokens=5, messages=CHAT)
    assert aexc.value.body["error"] == {
        "type": "permission_error",
        "code": "model_not_allowed",
        "message": "This API key may not use the model claude-opus",
    }
    assert len(provider.requests) == 1  # only the allowed one went upstream
    row = finished_row(aexc.value.response.headers["x-gateway-request-id"])
    assert (row.status_code, row.upstream_id, row.attempts) == (403, None, 0)


def test_no_upstream_serving_the_model_is_404_model_not_found(
    gateway, provider, make_upstream, make_key
):
    raw = _key(make_key, make_upstream(base_url=provider.base_url, models=["gpt-4o"]))
    with pytest.raises(openai.NotFoundError) as exc:
        _openai(gateway, raw).chat.completions.create(model="gpt-5", messages=CHAT)
    assert exc.value.code == "model_not_found"
    assert "gpt-5" in exc.value.message
    assert provider.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_an_alias_rewrites_only_the_model_byte_for_byte(
    gateway, provider, make_upstream, make_key, stream
):
    upstream = make_upstream(
        base_url=provider.base_url, models=["real-*"], aliases={"fast": "real-mini"}
    )
    raw = _key(make_key, upstream)
    sent = (
        '{ "messages": [{"role": "user", "content": "say \\"model\\": fast \\u00e9"}],\n'
        '  "model" : "fast", "metadata": {"model": "fast"}, "temperature": 1.50, '
        f'"stream": {json.dumps(stream)}, "stream_options": {{"include_usage": true}} }}'
    ).encode()
    response = requests.post(
        f"{gateway.url}/v1/chat/completions",
        data=sent,
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
        timeout=15,
    )
    assert response.status_code == 200
    (received,) = provider.requests
    assert received.body == sent.replace(b'"model" : "fast"', b'"model" : "real-mini"', 1)
    row = finished_row(response.headers["x-gateway-request-id"])
    assert (row.model, row.upstream_model, row.is_stream) == ("fast", "real-mini", stream)


def test_weights_three_to_one_land_near_75_25(gateway, provider, make_upstream, make_key):
    heavy = make_upstream(name="heavy", base_url=provider.base_url, weight=3, api_key="sk-heavy-0")
    light = make_upstream(name="light", base_url=provider.base_url, weight=1, api_key="sk-light-0")
    raw = _key(make_key, heavy, light)
    with requests.Session() as session:
        for _ in range(400):
            response = session.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "m", "messages": CHAT},
                headers={"Authorization": f"Bearer {raw}"},
                timeout=15,
            )
            assert response.status_code == 200
    counts = Counter(r.headers["authorization"] for r in provider.requests)
    share = counts["Bearer sk-heavy-0"] / 400
    print(f"weights 3:1 over 400 requests: {share:.1%} / {1 - share:.1%}")
    # Four standard deviations at n=400 (one false failure in about 16,000 runs; three
    # failed one run in a few hundred), where 50/50 would be eleven away.
    assert abs(share - 0.75) < 0.087


def test_priority_decides_before_weight(gateway, provider, make_upstream, make_key):
    first = make_upstream(name="prio-first", base_url=provider.base_url, priority=0)
    later = make_upstream(name="prio-later", base_url=provider.base_url, priority=1, weight=100)
    raw = _key(make_key, later, first)
    ids = set()
    for _ in range(10):
        response = requests.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "m", "messages": CHAT},
            headers={"Authorization": f"Bearer {raw}"},
            timeout=15,
        )
        ids.add(finished_row(response.headers["x-gateway-request-id"]).upstream_id)
    assert ids == {first.pk}


def test_models_list_with_both_sdks(gateway, provider, listing_provider, make_upstream, make_key):
    named = make_upstream(
        name="named",
        base_url=provider.base_url,
        models=["gpt-4o", "gpt-4o-mini"],
        aliases={"fast": "gpt-4o-mini"},
    )
    listed = make_upstream(name="listed", base_url=listing_provider.base_url, models=["listed-*"])
    unlisted = make_upstream(
        name="cannot-list",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        models=["x-*", "x-exact"],
        aliases={"x-alias": "x-1"},
    )
    raw = _key(make_key, named, listed, unlisted)
    expected = ["fast", "gpt-4o", "gpt-4o-mini", "listed-a", "listed-b", "x-alias", "x-exact"]

    page = _openai(gateway, raw).models.list()
    assert [m.id for m in page.data] == expected
    assert {m.owned_by for m in page.data if m.id.startswith("listed")} == {"listed"}
    assert [m.id for m in _anthropic(gateway, raw).models.list().data] == expected
    assert _openai(gateway, raw).models.retrieve("fast").id == "fast"
    with pytest.raises(openai.NotFoundError) as exc:
        _openai(gateway, raw).models.retrieve("other-c")
    assert exc.value.code == "model_not_found"

    allowed = _key(make_key, named, listed, models=["gpt-*", "listed-b"])
    assert [m.id for m in _openai(gateway, allowed).models.list().data] == [
        "gpt-4o",
        "gpt-4o-mini",
        "listed-b",
    ]
    # The upstream's list is cached: one GET /models to it for all of the above (per worker).
    assert 1 <= sum(r.path == "/v1/models" for r in listing_provider.requests) <= 2


def test_models_list_in_anthropic_shape(gateway, provider, make_upstream, make_key):
    raw = _key(make_key, make_upstream(base_url=provider.base_url, models=["claude-a"]))
    response = requests.get(
        f"{gateway.url}/v1/models",
        headers={"x-api-key": raw, "anthropic-version": "2023-06-01"},
        timeout=15,
    )
    assert response.json() == {
        "data": [
            {
                "type": "model",
                "id": "claude-a",
                "display_name": "claude-a",
                "created_at": "1970-01-01T00:00:00Z",
            }
        ],
        "has_more": False,
        "first_id": "claude-a",
        "last_id": "claude-a",
    }
    row = finished_row(response.headers["x-gateway-request-id"])
    assert (row.status_code, row.path) == (200, "/v1/models")


def test_azure_sends_the_secret_as_api_key(gateway, provider, make_upstream, make_key):
    upstream = make_upstream(provider="azure", base_url=provider.base_url, api_key="sk-azure-1234")
    raw = _key(make_key, upstream)
    reply = _openai(gateway, raw).chat.completions.create(model="my-deployment", messages=CHAT)
    assert reply.choices[0].message.content
    (received,) = provider.requests
    assert received.headers["api-key"] == "sk-azure-1234"
    assert "authorization" not in received.headers
