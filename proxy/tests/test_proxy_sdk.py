"""The official SDKs work through the gateway unchanged, and every answer's usage is logged exactly.

Real gunicorn (gevent workers), real database, the fake provider as the upstream.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from testing.helpers import finished_row, wait_until

CHAT = [{"role": "user", "content": "Say hi"}]


def test_openai_chat_completion_json(openai_route, provider):
    client = openai_route.openai()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=CHAT,
        extra_headers={"x-fake-prompt-tokens": "13", "x-fake-cache-read": "5"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "chunk-0 chunk-1 chunk-2 "
    assert raw.headers["x-request-id"].startswith("fake-")  # the upstream's own id passes through

    row = finished_row(raw.headers["x-gateway-request-id"])
    assert (row.status_code, row.error, row.model, row.is_stream) == (200, "", "gpt-test", False)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (13, 3, 16)
    assert (row.cache_read_tokens, row.cache_write_tokens) == (5, None)
    assert row.api_key_id == openai_route.key.pk
    assert row.upstream_id == openai_route.upstream.pk
    assert row.path == "/v1/chat/completions" and row.method == "POST"
    assert row.duration_ms is not None and row.ttfb_ms is not None
    assert row.ttfb_ms <= row.duration_ms


def test_openai_chat_completion_stream_with_usage(openai_route):
    client = openai_route.openai()
    with client.chat.completions.with_streaming_response.create(
        model="gpt-stream",
        messages=CHAT,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-chunks": "5", "x-fake-prompt-tokens": "21"},
    ) as response:
        request_id = response.headers["x-gateway-request-id"]
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"chunk-{i} " for i in range(5))
    assert chunks[-1].usage.completion_tokens == 5

    row = finished_row(request_id)
    assert (row.status_code, row.error, row.model, row.is_stream) == (200, "", "gpt-stream", True)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (21, 5, 26)
    assert row.cache_read_tokens == 0


def test_openai_stream_without_usage_records_unknown_not_zero(openai_route):
    # The gateway asks streams for usage (PROXY_FORCE_STREAM_USAGE) unless the upstream
    # says not to: then a stream without usage stays unknown.
    from upstreams.services import upstream_update

    upstream_update(actor="tests", upstream=openai_route.upstream, inject_stream_usage=False)
    stream = openai_route.openai().chat.completions.create(
        model="gpt-stream", messages=CHAT, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    row = finished_row()
    assert row.status_code == 200
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (None, None, None)


def test_openai_responses_stream(openai_route):
    client = openai_route.openai()
    events = list(
        client.responses.create(
            model="gpt-resp",
            input="Say hi",
            stream=True,
            extra_headers={
                "x-fake-chunks": "4",
                "x-fake-prompt-tokens": "30",
                "x-fake-cache-read": "8",
            },
        )
    )
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "".join(f"chunk-{i} " for i in range(4))
    completed = [e for e in events if e.type == "response.completed"]
    assert completed and completed[0].response.usage.input_tokens == 30

    row = finished_row()
    assert (row.status_code, row.model, row.is_stream, row.path) == (
        200,
        "gpt-resp",
        True,
        "/v1/responses",
    )
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (30, 4, 34)
    assert row.cache_read_tokens == 8


def test_anthropic_messages_json(anthropic_route):
    client = anthropic_route.anthropic()
    raw = client.messages.with_raw_response.create(
        model="claude-test",
        max_tokens=100,
        messages=CHAT,
        extra_headers={
            "x-fake-prompt-tokens": "40",
            "x-fake-cache-read": "7",
            "x-fake-cache-write": "3",
        },
    )
    message = raw.parse()
    assert message.content[0].text == "chunk-0 chunk-1 chunk-2 "
    assert message.usage.input_tokens == 40

    row = finished_row(raw.headers["x-gateway-request-id"])
    assert (row.status_code, row.error, row.model, row.is_stream) == (200, "", "claude-test", False)
    assert (row.prompt_tokens, row.completion_tokens) == (40, 3)
    assert (row.cache_read_tokens, row.cache_write_tokens) == (7, 3)
    # Anthropic counts cache tokens outside input_tokens; total is every token billed.
    assert row.total_tokens == 40 + 7 + 3 + 3


def test_anthropic_messages_stream(anthropic_route):
    client = anthropic_route.anthropic()
    with client.messages.stream(
        model="claude-stream",
        max_tokens=100,
        messages=CHAT,
        extra_headers={
            "x-fake-chunks": "6",
            "x-fake-prompt-tokens": "50",
            "x-fake-cache-read": "2",
        },
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "".join(f"chunk-{i} " for i in range(6))
    assert final.usage.output_tokens == 6

    row = finished_row()
    assert (row.status_code, row.model, row.is_stream, row.path) == (
        200,
        "claude-stream",
        True,
        "/v1/messages",
    )
    assert (row.prompt_tokens, row.completion_tokens) == (50, 6)
    assert (row.cache_read_tokens, row.cache_write_tokens) == (2, 0)
    assert row.total_tokens == 50 + 2 + 0 + 6


def test_openai_upstream_gets_its_secret_and_never_the_client_key(openai_route, provider):
    openai_route.openai().chat.completions.create(
        model="gpt-test",
        messages=CHAT,
        extra_headers={"X-Upstream-Name": openai_route.upstream.name},
    )
    (received,) = provider.requests
    assert received.headers["authorization"] == f"Bearer {openai_route.secret}"
    assert "x-upstream-name" not in received.headers
    assert "x-api-key" not in received.headers
    assert all(openai_route.raw_key not in v for v in received.headers.values())
    assert received.headers["host"] == urlsplit(provider.base_url).netloc
    assert received.path == "/v1/chat/completions"
    # The SDK's own headers arrive as it sent them.
    assert received.headers["user-agent"].startswith("OpenAI/Python")
    assert received.headers["x-stainless-lang"] == "python"


def test_anthropic_upstream_gets_its_secret_and_never_the_client_key(anthropic_route, provider):
    anthropic_route.anthropic().messages.create(model="claude-test", max_tokens=10, messages=CHAT)
    (received,) = provider.requests
    assert received.headers["x-api-key"] == anthropic_route.secret
    assert "authorization" not in received.headers
    assert all(anthropic_route.raw_key not in v for v in received.headers.values())
    assert received.headers["anthropic-version"]  # the SDK's version header passes through
    assert received.path == "/v1/messages"


def test_bearer_key_works_for_anthropic_clients_too(anthropic_route, provider):
    client = anthropic_route.anthropic(api_key=None, auth_token=anthropic_route.raw_key)
    message = client.messages.create(model="claude-test", max_tokens=10, messages=CHAT)
    assert message.content[0].text
    assert provider.requests[0].headers["x-api-key"] == anthropic_route.secret


@pytest.mark.parametrize("with_query", [False, True])
def test_a_list_and_its_query_string_pass_through(openai_route, provider, with_query):
    client = openai_route.openai()
    files = client.files.list(extra_query={"limit": "2", "q": "a b"} if with_query else None)
    assert files.data == []
    expected = "/v1/files?limit=2&q=a+b" if with_query else "/v1/files"
    assert provider.requests[0].path == expected
    assert provider.requests[0].method == "GET"


def test_a_proxied_request_marks_its_key_as_used(openai_route):
    from keys.models import APIKey

    key = APIKey.objects.get(pk=openai_route.key.pk)
    assert key.last_used_at is None  # creating and reading a key does not touch it
    openai_route.openai().chat.completions.create(model="gpt-test", messages=CHAT)
    wait_until(
        lambda: APIKey.objects.filter(pk=key.pk, last_used_at__isnull=False).exists(),
        message="the proxy did not note the key's use (key_touch)",
    )
