"""The fake provider speaks well enough for the official SDKs, and its fault scenarios behave.

Driven directly (no gateway): these prove the upstream the proxy tests and the benchmark
rely on, so a failure there points at the gateway, not at the fake.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import socket
import time

import anthropic
import openai
import pytest
import requests

from testing.fake_provider import FakeProvider


@pytest.fixture(scope="module")
def provider():
    fp = FakeProvider().start()
    yield fp
    fp.stop()


@pytest.fixture
def fp(provider):
    provider.clear()
    return provider


def openai_client(fp, **headers) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=fp.base_url,
        api_key="sk-test",
        max_retries=0,
        timeout=10,
        default_headers=headers or None,
    )


def anthropic_client(fp, **headers) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=fp.base_url.removesuffix("/v1"),
        api_key="sk-ant-test",
        max_retries=0,
        timeout=10,
        default_headers=headers or None,
    )


def raw_request(fp, head: str, body: bytes = b"", timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", fp.port), timeout=timeout)
    sock.sendall(head.encode() + body)
    return sock


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    data = b""
    while marker not in data and len(data) < limit:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


MESSAGES = [{"role": "user", "content": "hi"}]


def test_openai_chat_json_is_parsed_by_the_sdk(fp):
    client = openai_client(fp, **{"x-fake-prompt-tokens": "20", "x-fake-cache-read": "5"})
    answer = client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    assert answer.choices[0].message.content == "chunk-0 chunk-1 chunk-2 "
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gpt-fake"
    assert (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
        answer.usage.total_tokens,
    ) == (20, 3, 23)
    assert answer.usage.prompt_tokens_details.cached_tokens == 5
    sent = fp.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert json.loads(sent.body)["model"] == "gpt-fake"


def test_openai_chat_stream_with_include_usage(fp):
    client = openai_client(fp, **{"x-fake-chunks": "5", "x-fake-completion-tokens": "9"})
    stream = client.chat.completions.create(
        model="gpt-fake", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"chunk-{i} " for i in range(5))
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 9)
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_chat_stream_without_include_usage_has_no_usage(fp):
    stream = openai_client(fp).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert all(c.usage is None and c.choices for c in chunks)


def test_openai_responses_json_and_stream(fp):
    client = openai_client(fp, **{"x-fake-cache-read": "4"})
    answer = client.responses.create(model="gpt-fake", input="hi")
    assert answer.output_text == "chunk-0 chunk-1 chunk-2 "
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (11, 3)
    with client.responses.stream(model="gpt-fake", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "chunk-0 chunk-1 chunk-2 "
    assert final.output_text == "chunk-0 chunk-1 chunk-2 "
    assert final.usage.total_tokens == 14
    assert final.usage.input_tokens_details.cached_tokens == 4


def test_anthropic_messages_json(fp):
    client = anthropic_client(fp, **{"x-fake-cache-read": "7", "x-fake-cache-write": "3"})
    message = client.messages.create(model="claude-fake", max_tokens=50, messages=MESSAGES)
    assert message.content[0].text == "chunk-0 chunk-1 chunk-2 "
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 11 and message.usage.output_tokens == 3
    assert message.usage.cache_read_input_tokens == 7
    assert message.usage.cache_creation_input_tokens == 3
    sent = fp.requests[-1]
    assert sent.path == "/v1/messages"
    # This SDK version sends its key as a Bearer token, not x-api-key.
    assert "sk-ant-test" in (
        sent.headers.get("x-api-key", ""),
        sent.headers.get("authorization", "")[7:],
    )


def test_anthropic_messages_stream(fp):
    client = anthropic_client(fp, **{"x-fake-chunks": "4", "x-fake-cache-read": "2"})
    with client.messages.stream(model="claude-fake", max_tokens=50, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "chunk-0 chunk-1 chunk-2 chunk-3 "
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 11
    assert final.usage.cache_read_input_tokens == 2


def test_rate_limit_answers_429_with_retry_after_in_each_dialect(fp):
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client(fp, **{"x-fake-status": "429"}).chat.completions.create(
            model="m", messages=MESSAGES
        )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["code"] == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as caught:
        anthropic_client(fp, **{"x-fake-status": "429"}).messages.create(
            model="m", max_tokens=5, messages=MESSAGES
        )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    answer = requests.post(
        fp.base_url + "/chat/completions", json={}, headers={"x-fake-status": "503"}
    )
    assert answer.status_code == 503 and answer.json()["error"]["type"] == "server_error"


def test_stall_before_headers_counts_the_disconnect(fp):
    sock = raw_request(
        fp,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-fake-scenario: stall-headers\r\n"
        "content-length: 2\r\n\r\n",
        b"{}",
        timeout=0.3,
    )
    with pytest.raises(TimeoutError):
        sock.recv(100)
    assert fp.disconnects == 0
    sock.close()
    assert fp.wait_for_disconnects(1, timeout=5)


def test_stall_mid_stream_sends_the_first_event_then_nothing(fp):
    with pytest.raises(requests.ConnectionError):  # read timeout while streaming
        with requests.post(
            fp.base_url + "/messages",
            json={"stream": True},
            stream=True,
            timeout=0.3,
            headers={"x-fake-scenario": "stall-mid"},
        ) as answer:
            assert answer.status_code == 200
            lines = answer.iter_lines()
            assert next(lines) == b"event: message_start"
            for _ in lines:
                pass
    assert fp.wait_for_disconnects(1, timeout=5)


def test_reset_mid_stream_resets_the_connection(fp):
    sock = raw_request(
        fp,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-fake-scenario: reset-mid\r\n"
        "content-length: 16\r\n\r\n",
        b'{"stream": true}',
    )
    data = read_until(sock, b"\n\n")
    assert data.startswith(b"HTTP/1.1 200") and b"data: {" in data
    with pytest.raises(ConnectionResetError):
        while sock.recv(65536):
            pass
    sock.close()
    assert fp.disconnects == 0


def test_close_mid_stream_leaves_the_chunked_answer_unfinished(fp):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(
            fp.base_url + "/responses",
            json={"stream": True},
            timeout=5,
            headers={"x-fake-scenario": "close-mid"},
        )


def test_slow_stream_spaces_its_chunks_and_counts_a_client_that_leaves(fp):
    headers = {"x-fake-chunks": "20", "x-fake-chunk-delay-ms": "100"}
    started = time.monotonic()
    with requests.post(
        fp.base_url + "/chat/completions",
        json={"stream": True},
        headers=headers,
        stream=True,
        timeout=5,
    ) as answer:
        events = answer.iter_lines()
        assert next(events).startswith(b"data: ")  # the role event comes at once
        first = time.monotonic() - started
        assert next(events) == b""
        assert b"chunk-0" in next(events)
        second = time.monotonic() - started
    # The role event comes before the first delay, the first text after it (the
    # bounds leave room for a loaded machine).
    assert second >= 0.09 and second - first >= 0.05
    assert fp.wait_for_disconnects(1, timeout=5)
    # A stream read to its end is no disconnect.
    answer = requests.post(
        fp.base_url + "/chat/completions",
        json={"stream": True},
        timeout=5,
        headers={"x-fake-chunks": "2", "x-fake-chunk-delay-ms": "10"},
    )
    assert answer.text.endswith("data: [DONE]\n\n")
    assert fp.disconnects == 1


def test_echo_reports_bodies_sent_with_content_length_or_chunked(fp):
    body = b"\x00\xffnot json" * 1000
    answer = requests.put(
        fp.base_url + "/anything?x=1",
        data=body,
        headers={"x-fake-scenario": "echo", "X-Custom": "a"},
    )
    echo = answer.json()
    assert (echo["method"], echo["path"], echo["body_length"]) == (
        "PUT",
        "/v1/anything?x=1",
        len(body),
    )
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert echo["headers"]["x-custom"] == "a"
    chunked = requests.post(
        fp.base_url + "/chat/completions",
        data=iter([body[:10], body[10:]]),
        headers={"x-fake-scenario": "echo"},
    ).json()
    assert (
        chunked["body_length"] == len(body) and chunked["headers"]["transfer-encoding"] == "chunked"
    )
    assert fp.requests[-1].body == body


def test_keep_alive_serves_many_requests_on_one_connection(fp):
    conn = http.client.HTTPConnection("127.0.0.1", fp.port, timeout=5)
    for i in range(5):
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps({"model": f"m{i}"}),
            headers={"content-type": "application/json"},
        )
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["model"] == f"m{i}"
        assert answer.getheader("x-request-id").startswith("fake-")
    conn.close()
    assert len(fp.requests) == 5


def test_big_json_has_its_usage_at_the_very_end(fp):
    answer = requests.post(
        fp.base_url + "/messages",
        json={"model": "m"},
        headers={"x-fake-scenario": "big", "x-fake-size": "300000"},
    )
    assert 300_000 < len(answer.content) < 301_000
    assert answer.content.endswith(
        b'"usage":{"input_tokens":11,"cache_creation_input_tokens":0,'
        b'"cache_read_input_tokens":0,"output_tokens":3}}'
    )


def test_gzip_answer_is_compressed_and_says_so(fp):
    answer = requests.post(
        fp.base_url + "/chat/completions",
        json={"model": "m"},
        stream=True,
        headers={"x-fake-scenario": "gzip"},
    )
    assert answer.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(answer.raw.read()))["usage"]["total_tokens"] == 14


def test_unknown_routes_and_invalid_bodies_use_the_provider_error_shape(fp):
    assert requests.get(fp.base_url + "/nope").json()["error"]["type"] == "invalid_request_error"
    missing = requests.get(fp.base_url + "/messages/batches")
    assert missing.status_code == 404 and missing.json()["type"] == "error"
    invalid = requests.post(fp.base_url + "/chat/completions", data=b"{not json")
    assert invalid.status_code == 400 and "error" in invalid.json()
    assert requests.get(fp.base_url + "/models").json()["data"][0]["id"] == "fake-model"
