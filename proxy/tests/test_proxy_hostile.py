"""What a key holder, or a hostile upstream, can no longer do through /v1."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from logs.models import RequestLog
from proxy.tests.test_proxy_requests import raw_http
from testing.helpers import finished_row


def _port(route) -> int:
    return int(route.gateway_url.rsplit(":", 1)[1])


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "FOO", "AVERYLONGMETHODNAME"])
def test_methods_outside_the_usual_seven_are_405_in_the_dialect(openai_route, provider, method):
    status, headers, body = raw_http(
        _port(openai_route),
        (
            f"{method} /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {openai_route.raw_key}\r\nConnection: close\r\n\r\n"
        ).encode(),
    )
    assert status == 405, (headers, body)
    assert json.loads(body)["error"]["code"] == "method_not_allowed"
    assert provider.requests == []
    assert finished_row(headers["x-gateway-request-id"]).status_code == 405


def test_a_body_shorter_than_its_length_is_never_forwarded(openai_route, provider):
    body = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "x": 1}'
    with socket.create_connection(("127.0.0.1", _port(openai_route)), timeout=10) as sock:
        sock.sendall(
            (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {openai_route.raw_key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body) + 50}\r\n\r\n"
            ).encode()
            + body
        )
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    row = finished_row()
    assert (row.status_code, row.error) == (0, "client disconnected")
    assert row.api_key_id == openai_route.key.pk
    assert provider.requests == []


# --- a hostile upstream ----------------------------------------------------------------


class _HostileUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_cookies: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        _HostileUpstream.seen_cookies.append(self.headers.get("Cookie"))
        secret = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.path == "/v1/echo-secret":
            body = json.dumps({"error": {"message": f"Incorrect API key provided: {secret}"}})
            self._answer(401, body.encode(), [("X-Echo", secret)])
        elif self.path == "/v1/bad-reason":
            payload = b"{}"
            self.wfile.write(
                b"HTTP/1.1 200 O\x1b[31mK\xff\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
        else:
            self._answer(
                200,
                b"{}",
                [
                    ("Set-Cookie", "sessionid=evil; Path=/django-admin/"),
                    ("Strict-Transport-Security", "max-age=31536000"),
                    ("X-Kept", "yes"),
                ],
            )

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile_route(make_route):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _HostileUpstream.seen_cookies = []
    yield make_route(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    server.shutdown()
    server.server_close()


def _get(route, path: str, **headers) -> requests.Response:
    return requests.get(
        f"{route.gateway_url}/v1/{path}",
        headers={"Authorization": f"Bearer {route.raw_key}", **headers},
        timeout=10,
    )


def test_cookies_go_neither_up_nor_down(hostile_route):
    response = _get(hostile_route, "anything", Cookie="sessionid=admin-session; csrftoken=x")
    assert response.status_code == 200
    assert _HostileUpstream.seen_cookies == [None]
    assert "Set-Cookie" not in response.headers
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Kept"] == "yes"


def test_a_proxied_answer_carries_only_the_upstreams_and_the_gateways_headers(hostile_route):
    response = _get(hostile_route, "anything", Cookie="csrftoken=x")
    names = {name.lower() for name in response.headers}
    assert names == {
        "connection",  # gunicorn's keep-alive
        "server",
        "date",
        "content-type",
        "content-length",
        "x-kept",
        "x-gateway-request-id",
    }


def test_an_upstream_echoing_its_secret_gets_it_masked(hostile_route):
    response = _get(hostile_route, "echo-secret")
    assert response.status_code == 401
    assert hostile_route.secret not in response.text
    assert hostile_route.secret[-4:] in response.text  # the mask keeps its last four
    assert hostile_route.secret not in response.headers["X-Echo"]
    assert json.loads(response.content)["error"]["message"].startswith("Incorrect API key")


def test_a_reason_phrase_with_control_bytes_is_a_502_with_a_finished_row(hostile_route):
    response = _get(hostile_route, "bad-reason")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "bad_gateway"
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert row.status_code == 502 and row.state == RequestLog.State.FINISHED


def test_a_lone_surrogate_in_model_is_encoded_and_the_request_proceeds(openai_route):
    response = requests.post(
        f"{openai_route.gateway_url}/v1/chat/completions",
        data=b'{"model": "\\ud800x", "messages": []}',
        headers={
            "Authorization": f"Bearer {openai_route.raw_key}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert response.status_code == 200
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert (row.status_code, row.api_key_id) == (200, openai_route.key.pk)
    assert "x" in row.model and "\ud800" not in row.model
