"""Usage for every OpenAI chat stream: asked for when the client did not, and the one chunk
this adds removed, every other byte as the upstream sent it; SDK helpers see what they would
see directly."""

from __future__ import annotations

import json
import re

import pytest
import requests

from testing.helpers import finished_row
from upstreams.services import upstream_update

CHAT = [{"role": "user", "content": "hi"}]
BODY = {"model": "gpt-test", "messages": CHAT, "stream": True}
USAGE_OPTION = {"include_usage": True}
_PER_CALL = re.compile(rb'chatcmpl-fake-\d+|"created":\s*\d+|fake-\d+')


def normalized(data: bytes) -> bytes:
    """The stream with what differs from one call to the next (id, time) blanked out."""
    return _PER_CALL.sub(b"*", data)


def usage_chunk_removed(data: bytes) -> bytes:
    events = data.split(b"\n\n")
    kept = [e for e in events if not (b'"choices":[]' in e and b'"usage":{' in e)]
    assert len(kept) == len(events) - 1, "the direct stream had no usage chunk"
    return b"\n\n".join(kept)


def via_gateway(route, body: dict, **headers) -> requests.Response:
    return requests.post(
        f"{route.gateway_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {route.raw_key}", **headers},
        timeout=15,
    )


def direct(provider, body: dict, **headers) -> bytes:
    response = requests.post(
        f"{provider.base_url}/chat/completions", json=body, headers=headers, timeout=15
    )
    assert response.status_code == 200
    return response.content


def test_a_stream_without_include_usage_is_counted_and_the_client_sees_no_extra_chunk(
    openai_route, provider
):
    response = via_gateway(openai_route, BODY, **{"x-fake-chunks": "5"})
    assert response.status_code == 200
    sent = json.loads(provider.requests[-1].body)
    assert sent == {"stream_options": USAGE_OPTION, **BODY}
    asked = {**BODY, "stream_options": USAGE_OPTION}
    expected = usage_chunk_removed(direct(provider, asked, **{"x-fake-chunks": "5"}))
    assert normalized(response.content) == normalized(expected)
    assert b'"choices":[]' not in response.content
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (11, 5, 16)


def test_a_client_that_asked_for_usage_gets_the_stream_exactly_as_sent(openai_route, provider):
    body = {**BODY, "stream_options": USAGE_OPTION}
    response = via_gateway(openai_route, body)
    assert provider.requests[-1].body == json.dumps(body).encode()
    assert normalized(response.content) == normalized(direct(provider, body))
    assert b'"choices":[]' in response.content
    assert finished_row(response.headers["X-Gateway-Request-ID"]).total_tokens == 14


def test_include_usage_false_is_overridden_and_the_chunk_still_hidden(openai_route, provider):
    body = {**BODY, "stream_options": {"include_usage": False}}
    response = via_gateway(openai_route, body)
    assert json.loads(provider.requests[-1].body)["stream_options"] == USAGE_OPTION
    assert b'"choices":[]' not in response.content
    assert finished_row(response.headers["X-Gateway-Request-ID"]).total_tokens == 14


def test_an_upstream_with_injection_off_gets_the_body_unchanged(openai_route, provider):
    upstream_update(actor="tests", upstream=openai_route.upstream, inject_stream_usage=False)
    raw = json.dumps(BODY).encode()
    response = requests.post(
        f"{openai_route.gateway_url}/v1/chat/completions",
        data=raw,
        headers={"Authorization": f"Bearer {openai_route.raw_key}",
                 "Content-Type": "application/json"},
        timeout=15,
    )  # fmt: skip
    assert provider.requests[-1].body == raw
    assert normalized(response.content) == normalized(direct(provider, BODY))
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert row.prompt_tokens is None and row.cost_usd is None  # unknown, not 0


def test_json_answers_and_other_endpoints_are_left_alone(openai_route, provider):
    via_gateway(openai_route, {**BODY, "stream": False})
    assert "stream_options" not in json.loads(provider.requests[-1].body)
    requests.post(
        f"{openai_route.gateway_url}/v1/responses",
        json={"model": "m", "input": "hi", "stream": True},
        headers={"Authorization": f"Bearer {openai_route.raw_key}"},
        timeout=15,
    )
    assert "stream_options" not in json.loads(provider.requests[-1].body)


def _sdk_chunks(client, **options) -> list[dict]:
    stream = client.chat.completions.create(model="gpt-test", messages=CHAT, stream=True, **options)
    return [c.model_dump(exclude={"id", "created"}) for c in stream]


@pytest.mark.parametrize("stream_options", [None, USAGE_OPTION])
def test_the_openai_sdk_sees_what_it_would_see_directly(openai_route, provider, stream_options):
    import openai

    options = {} if stream_options is None else {"stream_options": stream_options}
    direct_client = openai.OpenAI(base_url=provider.base_url, api_key="sk-x", max_retries=0)
    through = _sdk_chunks(openai_route.openai(), **options)
    assert through == _sdk_chunks(direct_client, **options)
    assert (through[-1]["usage"] is not None) is (stream_options is not None)
    assert finished_row().total_tokens == 14


@pytest.mark.parametrize("stream_options", [None, USAGE_OPTION])
def test_the_openai_sdk_stream_helper_works_with_and_without_stream_options(
    openai_route, stream_options
):
    options = {} if stream_options is None else {"stream_options": stream_options}
    client = openai_route.openai()
    with client.chat.completions.stream(model="gpt-test", messages=CHAT, **options) as stream:
        texts = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(texts) == "chunk-0 chunk-1 chunk-2 "
    assert final.choices[0].message.content == "".join(texts)
    assert (final.usage is not None) is (stream_options is not None)
    assert finished_row().total_tokens == 14


def test_the_anthropic_sdk_stream_helper_is_counted(anthropic_route):
    with anthropic_route.anthropic().messages.stream(
        model="claude-test", max_tokens=50, messages=CHAT
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "chunk-0 chunk-1 chunk-2 "
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 3)
    row = finished_row()
    assert (row.prompt_tokens, row.completion_tokens) == (11, 3)


@pytest.fixture(scope="module")
def gateway_without_injection(start_gateway):
    return start_gateway(workers=1, env={"PROXY_FORCE_STREAM_USAGE": "false"})


def test_proxy_force_stream_usage_false_turns_injection_off(
    gateway_without_injection, make_route, provider
):
    route = make_route(gateway_url=gateway_without_injection.url)
    raw = json.dumps(BODY).encode()
    requests.post(f"{route.gateway_url}/v1/chat/completions", data=raw,
                  headers={"Authorization": f"Bearer {route.raw_key}"}, timeout=15)  # fmt: skip
    assert provider.requests[-1].body == raw
    assert finished_row().prompt_tokens is None
