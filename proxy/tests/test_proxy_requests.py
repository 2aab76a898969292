"""What goes upstream (paths, headers, bodies) and what comes back (bytes, headers)."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from logs.models import RequestLog
from proxy.tests.conftest import finished_row


def raw_http(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes exactly as given; return (status, headers, body) of a Content-Length answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", len(body)))
        while len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
        return int(lines[0].split()[1]), headers, body


def get(route, raw_path: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    port = int(route.gateway_url.rsplit(":", 1)[1])
    return raw_http(
        port,
        (
            f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {route.raw_key}\r\n{extra}Connection: close\r\n\r\n"
        ).encode("latin-1"),
    )


# --- paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_path",
    [
        "/v1/../admin/keys",
        "/v1/%2e%2e/admin/keys",
        "/v1/%2E%2E/%2E%2E/x",
        "/v1/.%2e/x",
        "/v1/./models",
        "/v1/models/..",
        "/v1/models/../../admin",
        "/v1//evil.example/x",
        "/v1///evil.example/x",
        "/v1/chat//completions",
        "/v1/chat/%00",
        "/v1/chat%2fcompletions",
        "/v1/a%5c..%5cb",
        "/v1/a\\..\\b",
        "/v1/%252e%252e/x",
        "/v1/chat/%0d%0aX-Injected:%20yes",
    ],
)
def test_a_path_that_could_leave_base_url_is_refused(openai_route, provider, raw_path):
    status, headers, body = get(openai_route, raw_path)
    assert status == 400
    assert json.loads(body)["error"]["code"] == "invalid_request"
    assert provider.requests == []
    assert finished_row(headers["x-gateway-request-id"]).status_code == 400


@pytest.mark.parametrize("raw_path", ["/v1/chat/\x00x", "/v1/chat/\tx", "/v1/a b"])
def test_raw_control_characters_never_reach_the_upstream(openai_route, provider, raw_path):
    status, _, _ = get(openai_route, raw_path)
    assert status == 400  # refused by gunicorn itself, before the gateway
    assert provider.requests == []


def test_dots_in_the_query_string_are_just_data(openai_route, provider):
    status, _, _ = get(openai_route, "/v1/files?after=../x&q=%2e%2e")
    assert status == 200
    # Percent-encodings may reach the upstream in upper case (the same bytes to any server).
    assert provider.requests[0].path.lower() == "/v1/files?after=../x&q=%2e%2e"


def test_body_fields_and_headers_cannot_redirect_the_request(openai_route, provider):
    response = requests.post(
        f"{openai_route.gateway_url}/v1/chat/completions",
        json={
            "model": "gpt-test",
            "messages": [],
            "api_base": "http://127.0.0.1:1/v1",
            "base_url": "http://127.0.0.1:1/v1",
        },
        headers={
            "Authorization": f"Bearer {openai_route.raw_key}",
            "X-Forwarded-Host": "evil.example",
            "X-Original-URL": "http://evil.example/v1",
        },
        timeout=10,
    )
    assert response.status_code == 200
    (received,) = provider.requests
    assert received.path == "/v1/chat/completions"
    assert received.headers["host"] == provider.base_url.split("/")[2]


# --- headers ----------------------------------------------------------------------------


def test_hop_by_hop_and_gateway_headers_are_not_forwarded(openai_route, provider):
    port = int(openai_route.gateway_url.rsplit(":", 1)[1])
    body = b'{"model": "m", "messages": []}'
    status, _, answer = raw_http(
        port,
        (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"x-api-key: {openai_route.raw_key}\r\n"
            "Connection: keep-alive, X-Named-By-Connection\r\n"
            "X-Named-By-Connection: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
            "Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Connection: keep-alive\r\n"
            "X-Upstream-Name: " + openai_route.upstream.name + "\r\n"
            "X-Kept: yes\r\nContent-Type: application/json\r\nx-fake-scenario: echo\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body,
    )
    assert status == 200
    seen = json.loads(answer)["headers"]
    for name in (
        "x-named-by-connection",
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
        "x-upstream-name",
        "x-api-key",
        "connection",
    ):
        assert name not in seen, name
    assert seen["authorization"] == f"Bearer {openai_route.secret}"
    assert seen["x-kept"] == "yes"
    assert seen["content-length"] == str(len(body))
    # Nothing the client did not send is added (no User-Agent, no Accept-Encoding).
    assert "user-agent" not in seen and "accept-encoding" not in seen


class _HeaderUpstream(BaseHTTPRequestHandler):
    """An upstream answering with headers the fake provider never sends."""

    protocol_version = "HTTP/1.1"
    seen_cookies: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        _HeaderUpstream.seen_cookies.append(self.headers.get("Cookie"))
        body = b"plain bytes"
        self.send_response(200)
        if self.path != "/v1/no-type":
            self.send_header("Content-Type", "text/plain")
        self.send_header("Set-Cookie", "a=1; Path=/")
        self.send_header("Set-Cookie", "b=2; Path=/")
        self.send_header("Connection", "X-Drop-Me")
        self.send_header("X-Drop-Me", "1")
        self.send_header("Keep-Alive", "timeout=1")
        self.send_header("X-Kept", "yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def header_upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HeaderUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _HeaderUpstream.seen_cookies = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_answer_headers_pass_through_minus_hop_by_hop(make_route, header_upstream):
    route = make_route(base_url=header_upstream)
    response = requests.get(
        f"{route.gateway_url}/v1/anything",
        headers={"Authorization": f"Bearer {route.raw_key}"},
        timeout=10,
    )
    assert response.status_code == 200 and response.content == b"plain bytes"
    assert response.raw.headers.getlist("Set-Cookie") == []  # the contract: never passed back
    assert response.headers["X-Kept"] == "yes"
    assert "X-Drop-Me" not in response.headers and "Keep-Alive" not in response.headers
    assert response.headers["content-type"] == "text/plain"

    # No cookie jar in the gateway: the next caller never sends the upstream's cookies.
    response = requests.get(
        f"{route.gateway_url}/v1/no-type",
        headers={"Authorization": f"Bearer {route.raw_key}"},
        timeout=10,
    )
    assert _HeaderUpstream.seen_cookies == [None, None]
    assert "content-type" not in response.headers  # none invented when the upstream sent none


# --- bodies -----------------------------------------------------------------------------


def _echo(route, data, **headers):
    return requests.post(
        f"{route.gateway_url}/v1/chat/completions",
        data=data,
        headers={
            "Authorization": f"Bearer {route.raw_key}",
            "Content-Type": "application/json",
            "x-fake-scenario": "echo",
            **headers,
        },
        timeout=30,
    )


def test_a_body_far_above_djangos_upload_limit_passes_intact(openai_route):
    body = json.dumps({"model": "gpt-big", "messages": [], "pad": "x" * (5 * 1024 * 1024)}).encode()
    answer = _echo(openai_route, body).json()
    assert answer["body_length"] == len(body)
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert finished_row().model == "gpt-big"


def test_a_chunked_body_is_forwarded_intact_with_its_length(openai_route):
    parts = [b'{"model": "gpt-chunked", "messages": [], "pad": "', b"y" * 300_000, b'"}']
    answer = _echo(openai_route, iter(parts)).json()
    body = b"".join(parts)
    assert answer["body_length"] == len(body)
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert answer["headers"]["content-length"] == str(len(body))
    assert "transfer-encoding" not in answer["headers"]


def test_invalid_json_is_the_upstreams_business(openai_route, provider):
    response = requests.post(
        f"{openai_route.gateway_url}/v1/chat/completions",
        data=b"{not json",
        headers={
            "Authorization": f"Bearer {openai_route.raw_key}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The body is not a JSON object"  # the provider's
    assert provider.requests[0].body == b"{not json"
    row = finished_row()
    # The row keeps the upstream's own error.message (CONTRACT.md, Request log).
    assert (row.status_code, row.model, row.error) == (400, "", "The body is not a JSON object")


@pytest.fixture(scope="module")
def small_body_gateway(start_gateway):
    return start_gateway(workers=1, env={"PROXY_MAX_BODY_BYTES": "4096"})


def test_a_body_over_the_limit_is_413_in_the_callers_dialect(
    small_body_gateway, make_route, provider
):
    route = make_route(gateway_url=small_body_gateway.url)
    headers = {"Authorization": f"Bearer {route.raw_key}", "Content-Type": "application/json"}
    big = b'{"pad": "' + b"z" * 5000 + b'"}'

    response = requests.post(
        f"{route.gateway_url}/v1/chat/completions", data=big, headers=headers, timeout=10
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    anthropic_route = make_route(gateway_url=small_body_gateway.url, provider="anthropic")
    response = requests.post(
        f"{route.gateway_url}/v1/messages",
        data=big,
        headers={**headers, "Authorization": f"Bearer {anthropic_route.raw_key}"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "request_too_large",
            "message": "The request body is larger than 4096 bytes",
            "code": "request_too_large",
        },
    }

    chunked = requests.post(
        f"{route.gateway_url}/v1/chat/completions",
        data=iter([big[:3000], big[3000:]]),
        headers=headers,
        timeout=10,
    )
    assert chunked.status_code == 413
    assert provider.requests == []
    assert sorted(RequestLog.objects.values_list("status_code", flat=True)) == [413, 413, 413]

    exact = b'{"pad": "' + b"z" * (4096 - 11) + b'"}'
    assert len(exact) == 4096
    response = requests.post(
        f"{route.gateway_url}/v1/chat/completions",
        data=exact,
        headers={**headers, "x-fake-scenario": "echo"},
        timeout=10,
    )
    assert response.json()["body_length"] == 4096


# --- answers ----------------------------------------------------------------------------


def test_a_compressed_answer_passes_through_compressed_and_its_usage_is_read(openai_route):
    response = requests.post(
        f"{openai_route.gateway_url}/v1/chat/completions",
        json={"model": "gpt-gzip", "messages": []},
        headers={
            "Authorization": f"Bearer {openai_route.raw_key}",
            "Accept-Encoding": "gzip",
            "x-fake-scenario": "gzip",
            "x-fake-prompt-tokens": "17",
        },
        stream=True,
        timeout=10,
    )
    raw = response.raw.read(decode_content=False)
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(raw)
    assert json.loads(gzip.decompress(raw))["usage"]["prompt_tokens"] == 17
    assert finished_row().prompt_tokens == 17


def test_a_big_answer_is_relayed_whole_with_usage_from_its_end(openai_route):
    response = requests.post(
        f"{openai_route.gateway_url}/v1/chat/completions",
        json={"model": "gpt-big", "messages": []},
        headers={
            "Authorization": f"Bearer {openai_route.raw_key}",
            "x-fake-scenario": "big",
            "x-fake-size": str(8 * 1024 * 1024),
            "x-fake-completion-tokens": "99",
        },
        timeout=30,
    )
    assert len(response.content) > 8 * 1024 * 1024
    assert response.json()["usage"]["completion_tokens"] == 99
    assert finished_row().completion_tokens == 99


def test_upstreams_lists_only_the_keys_names(gateway, make_route, make_upstream, provider):
    route = make_route(name="alpha")
    make_upstream(name="not-yours")
    response = requests.get(
        f"{route.gateway_url}/v1/upstreams", headers={"x-api-key": route.raw_key}, timeout=10
    )
    assert response.status_code == 200
    assert response.json() == {"upstreams": ["alpha"]}
    assert finished_row(response.headers["x-gateway-request-id"]).status_code == 200
    assert provider.requests == []
    assert requests.get(f"{route.gateway_url}/v1/upstreams", timeout=10).status_code == 401
