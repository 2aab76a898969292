"""The forwarding rules as tables: paths, headers both ways, bodies."""

from __future__ import annotations

import io
import socket
import time

import pytest

from proxy import forward
from proxy.errors import BodyTooLarge, ClientGone, InvalidPath, MalformedBody, RequestTimeout


@pytest.mark.parametrize(
    ("raw_uri", "path_info", "query", "target"),
    [
        ("/v1/chat/completions", "/v1/chat/completions", "", "chat/completions"),
        ("/v1/models?limit=2", "/v1/models", "limit=2", "models?limit=2"),
        ("/v1/files/file-1/content", "/v1/files/file-1/content", "", "files/file-1/content"),
        ("/v1/models/gpt%3Aft", "/v1/models/gpt:ft", "", "models/gpt%3Aft"),  # raw kept
        ("/v1/models/", "/v1/models/", "", "models/"),
        ("/v1/x?a=../b", "/v1/x", "a=../b", "x?a=../b"),  # the query is data
    ],
)
def test_upstream_target_keeps_the_raw_path_and_query(raw_uri, path_info, query, target):
    assert forward.upstream_target(raw_uri=raw_uri, path_info=path_info, query=query) == target


@pytest.mark.parametrize(
    ("raw_uri", "path_info"),
    [
        ("/v1/../admin", "/v1/../admin"),
        ("/v1/%2e%2e/admin", "/v1/../admin"),
        ("/v1/%2E./admin", "/v1/../admin"),
        ("/v1/a/%2e", "/v1/a/."),
        ("/v1/./a", "/v1/./a"),
        ("/v1/a/..", "/v1/a/.."),
        ("/v1//evil.example/x", "/v1//evil.example/x"),
        ("/v1/a//b", "/v1/a//b"),
        ("/v1/a%2fb", "/v1/a/b"),
        ("/v1/a%5cb", "/v1/a\\b"),
        ("/v1/a\\b", "/v1/a\\b"),
        ("/v1/a%00", "/v1/a\x00"),
        ("/v1/a%0d%0aX: y", "/v1/a\r\nX: y"),
        ("/v1/%252e%252e", "/v1/%2e%2e"),
        ("/admin/keys", "/admin/keys"),
        ("/v1", "/v1"),
    ],
)
def test_upstream_target_refuses_paths_that_could_leave_base_url(raw_uri, path_info):
    with pytest.raises(InvalidPath):
        forward.upstream_target(raw_uri=raw_uri, path_info=path_info, query="")


def test_upstream_url_joins_base_url_and_target():
    assert (
        forward.upstream_url(base_url="https://api.example.com/v1", target="chat/completions?x=1")
        == "https://api.example.com/v1/chat/completions?x=1"
    )
    assert (
        forward.upstream_url(base_url="http://h:1/v1/", target="models") == "http://h:1/v1/models"
    )


def test_request_headers_drop_credentials_routing_and_hop_by_hop():
    environ = {
        "HTTP_AUTHORIZATION": "Bearer sk-auto-client",
        "HTTP_X_API_KEY": "sk-auto-client",
        "HTTP_X_UPSTREAM_NAME": "u",
        "HTTP_HOST": "gateway.example",
        "HTTP_CONNECTION": "keep-alive, X-Named",
        "HTTP_X_NAMED": "1",
        "HTTP_KEEP_ALIVE": "timeout=5",
        "HTTP_TE": "trailers",
        "HTTP_TRAILER": "x",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "HTTP_UPGRADE": "h2c",
        "HTTP_PROXY_AUTHORIZATION": "Basic x",
        "HTTP_PROXY_ANYTHING": "x",
        "HTTP_EXPECT": "100-continue",
        "CONTENT_LENGTH": "10",
        "CONTENT_TYPE": "application/json",
        "HTTP_ANTHROPIC_VERSION": "2023-06-01",
        "HTTP_X_STAINLESS_LANG": "python",
        "HTTP_USER_AGENT": "OpenAI/Python 3",
        "HTTP_ACCEPT_ENCODING": "gzip",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(),
    }
    assert forward.request_headers(environ) == {
        "Content-Type": "application/json",
        "Anthropic-Version": "2023-06-01",
        "X-Stainless-Lang": "python",
        "User-Agent": "OpenAI/Python 3",
        "Accept-Encoding": "gzip",
    }


def test_response_headers_drop_hop_by_hop_and_unsendable_ones():
    upstream = [
        ("Content-Type", "text/event-stream"),
        ("Connection", "keep-alive, X-Named"),
        ("X-Named", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "10"),  # meaningless beside Transfer-Encoding
        ("Proxy-Authenticate", "Basic"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Strict-Transport-Security", "max-age=1"),
        ("x-request-id", "req_1"),
        ("retry-after", "7"),
        ("X-Gateway-Request-ID", "spoofed"),
        ("X-Accel-Buffering", "yes"),
        ("X-Bad", "a\x01b"),
        ("Bad Name", "x"),
    ]
    assert forward.response_headers(upstream) == [
        ("Content-Type", "text/event-stream"),
        ("x-request-id", "req_1"),
        ("retry-after", "7"),
    ]
    assert forward.response_headers([("Content-Length", "10")]) == [("Content-Length", "10")]


class _Input(io.BytesIO):
    """wsgi.input that hands out at most `step` bytes a read, like a socket."""

    def __init__(self, data: bytes, step: int = 1000, fail: type[BaseException] | None = None):
        super().__init__(data)
        self.step = step
        self.fail = fail

    def read(self, size=-1):
        part = super().read(min(size, self.step) if size and size > 0 else self.step)
        if not part and self.fail is not None:
            raise self.fail("gone")
        return part


@pytest.mark.parametrize(
    ("environ", "limit", "outcome"),
    [
        ({"CONTENT_LENGTH": "5", "wsgi.input": _Input(b"hello")}, 10, b"hello"),
        ({"CONTENT_LENGTH": "10", "wsgi.input": _Input(b"x" * 10)}, 10, b"x" * 10),
        ({"CONTENT_LENGTH": "11", "wsgi.input": _Input(b"x" * 11)}, 10, BodyTooLarge),
        ({"CONTENT_LENGTH": "abc", "wsgi.input": _Input(b"")}, 10, MalformedBody),
        # Chunked (no Content-Length): read to the end, or refused past the limit.
        (
            {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": _Input(b"y" * 2500)},
            3000,
            b"y" * 2500,
        ),
        (
            {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": _Input(b"y" * 3001)},
            3000,
            BodyTooLarge,
        ),
        ({"CONTENT_LENGTH": "9", "wsgi.input": _Input(b"abc", fail=OSError)}, 10, ClientGone),
        # Shorter than its Content-Length (the client half-closed): never forwarded.
        ({"CONTENT_LENGTH": "9", "wsgi.input": _Input(b"abc")}, 10, ClientGone),
        (
            {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": _Input(b"a", fail=ValueError)},
            10,
            MalformedBody,
        ),
    ],
)
def test_read_body(environ, limit, outcome):
    if isinstance(outcome, bytes):
        assert forward.read_body(environ, limit=limit) == outcome
    else:
        with pytest.raises(outcome):
            forward.read_body(environ, limit=limit)


def test_a_body_that_stalls_past_its_deadline_is_a_request_timeout():
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        client_side.sendall(b'{"mo')
        environ = {
            "CONTENT_LENGTH": "100",
            "wsgi.input": server_side.makefile("rb"),
            "gunicorn.socket": server_side,
        }
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            forward.read_body(environ, limit=1000, timeout=0.3, min_rate=1000)
        assert time.monotonic() - started < 2


def test_a_body_that_arrives_in_time_is_read_whole():
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        client_side.sendall(b"x" * 100)
        environ = {
            "CONTENT_LENGTH": "100",
            "wsgi.input": server_side.makefile("rb"),
            "gunicorn.socket": server_side,
        }
        assert forward.read_body(environ, limit=1000, timeout=1, min_rate=1000) == b"x" * 100
