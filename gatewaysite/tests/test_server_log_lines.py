"""What reaches the server's log: control characters escaped, no forged lines, no query
strings of malformed requests, one line for a disallowed Host."""

from __future__ import annotations

import socket

import pytest

from testing.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while True:
            more = sock.recv(65536)
            if not more:
                return data
            data += more


@pytest.fixture(scope="module")
def logged_gateway(start_gateway):
    return start_gateway(workers=1)


def test_a_path_cannot_forge_a_log_line_or_send_terminal_escapes(logged_gateway):
    answer = _send(
        logged_gateway.port,
        b"GET /v1/x%0a127.0.0.1%20%22GET%20/FORGED-LINE%22%20200%1b[2J HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 ")
    output = wait_until(
        lambda: (out := logged_gateway.output()) and "FORGED-LINE" in out and out,
        message="the request never reached the log",
    )
    assert "\x1b" not in output
    assert not any(
        line.lstrip().startswith('127.0.0.1 "GET /FORGED') for line in output.splitlines()
    )
    assert "\\x0a127.0.0.1" in output


def test_a_malformed_request_line_does_not_print_its_query_string(logged_gateway):
    _send(
        logged_gateway.port,
        b"GET /v1/models?token=QUERY-SECRET-123\r\nHost: 127.0.0.1\r\n\r\n",
    )
    output = wait_until(
        lambda: (out := logged_gateway.output()) and "Invalid request" in out and out,
        message="gunicorn did not log the malformed request",
    )
    assert "QUERY-SECRET-123" not in output


def test_a_disallowed_host_is_one_log_line(logged_gateway):
    before = len(logged_gateway.output().splitlines())
    answer = _send(
        logged_gateway.port,
        b"GET /django-admin/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    lines = wait_until(
        lambda: [
            line
            for line in logged_gateway.output().splitlines()[before:]
            if "evil.example" in line or "Traceback" in line
        ],
        message="the disallowed host was not logged",
    )
    assert len(lines) == 1 and "Invalid HTTP_HOST header" in lines[0]
