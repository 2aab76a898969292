"""The upstream transport on its own: certificates are checked, and each upstream origin
keeps its connections alive between calls."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from contextlib import contextmanager

import pytest

from proxy import forward
from proxy.errors import UpstreamUnreachable


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    requests_seen: list[str]

    def do_GET(self):  # noqa: N802 - http.server's name
        self.requests_seen.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def _server(tls_dir=None):
    connections = []

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, address = super().get_request()
            connections.append(address)
            return sock, address

    handler = type("Handler", (_Handler,), {"requests_seen": []})
    server = Server(("127.0.0.1", 0), handler)
    if tls_dir is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, connections, handler.requests_seen
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> bytes:
    answer = forward.upstream_send(
        method="GET", url=url, headers={}, body=None, connect_timeout=5, read_timeout=5
    )
    body = b""
    while chunk := answer.read_chunk():
        body += chunk
    answer.close()
    return body


def test_an_upstream_whose_certificate_is_not_trusted_is_never_sent_the_request(tmp_path):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True,
        capture_output=True,
    )
    with _server(tmp_path) as (server, _, seen):
        port = server.server_address[1]
        with pytest.raises(UpstreamUnreachable) as refused:
            _get(f"https://127.0.0.1:{port}/v1/models")
    assert refused.value.reason == "TLS certificate not trusted"
    assert seen == []  # the secret-bearing request never left


def test_calls_to_one_upstream_reuse_its_connection_and_each_origin_has_its_own():
    with _server() as (first, first_connections, first_seen):
        with _server() as (second, second_connections, _):
            one = f"http://127.0.0.1:{first.server_address[1]}"
            two = f"http://127.0.0.1:{second.server_address[1]}"
            for _ in range(3):
                assert _get(f"{one}/v1/models?n=1") == b'{"ok": true}'
                assert _get(f"{two}/v1/chat") == b'{"ok": true}'
    assert first_seen == ["/v1/models?n=1"] * 3  # the path and query as given
    assert len(first_connections) == 1
    assert len(second_connections) == 1


def test_a_worker_keeps_a_bounded_number_of_upstream_pools(monkeypatch):
    monkeypatch.setattr(forward, "POOL_HOSTS", 1)
    with _server() as (server, connections, _):
        port = server.server_address[1]
        one, two = f"http://127.0.0.1:{port}", f"http://localhost:{port}"  # two origins
        _get(f"{one}/v1/models")
        _get(f"{two}/v1/models")  # the first origin's pool is dropped
        _get(f"{one}/v1/models")  # so it connects anew
    assert len(connections) == 3
