"""Server log lines an operator reads: each line about a request names its request id,
LOG_FORMAT=json gives one JSON object per line, and causes are said where they happen."""

from __future__ import annotations

import json

import pytest
import requests
from cryptography.fernet import Fernet

from testing.helpers import finished_row, free_port, wait_until
from upstreams.models import Upstream
from upstreams.services import upstream_update

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def json_gateway(start_gateway):
    return start_gateway(workers=1, env={"LOG_FORMAT": "json"})


def _lines_naming(gateway, request_id: str) -> list[str]:
    return [line for line in gateway.output().splitlines() if request_id in line]


def test_every_line_about_a_failed_request_names_its_request_id(gateway, make_route):
    route = make_route(base_url=f"http://127.0.0.1:{free_port()}/v1")  # nothing listens
    answer = requests.post(
        f"{gateway.url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {route.raw_key}"},
        timeout=15,
    )
    assert answer.status_code == 502
    request_id = answer.headers["X-Gateway-Request-ID"]
    lines = wait_until(
        lambda: [line for line in _lines_naming(gateway, request_id) if "Bad Gateway" in line],
        message="no django.request line named the request",
    )
    assert f"ERROR django.request request_id={request_id} Bad Gateway" in lines[0]
    access = wait_until(
        lambda: [line for line in _lines_naming(gateway, request_id) if '"POST /v1/' in line]
    )
    assert access[0].endswith(f"request_id={request_id}")


def test_log_format_json_gives_one_object_per_line_with_the_request_id(
    json_gateway, make_route, transactional_db
):
    route = make_route(gateway_url=json_gateway.url, base_url=f"http://127.0.0.1:{free_port()}/v1")
    answer = requests.post(
        f"{json_gateway.url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {route.raw_key}"},
        timeout=15,
    )
    assert answer.status_code == 502
    request_id = answer.headers["X-Gateway-Request-ID"]
    wait_until(lambda: len(_lines_naming(json_gateway, request_id)) >= 2)
    objects = [json.loads(line) for line in json_gateway.output().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(o) for o in objects)
    about = [o for o in objects if request_id in json.dumps(o)]
    loggers = {o["logger"] for o in about}
    assert {"django.request", "gunicorn.access"} <= loggers
    bad_gateway = next(o for o in about if o["logger"] == "django.request")
    assert bad_gateway["request_id"] == request_id and bad_gateway["level"] == "ERROR"


def test_a_secret_no_key_decrypts_is_named_in_the_row_and_the_server_log(gateway, make_route):
    route = make_route()
    # Written under a key the gateway does not have: a rotation done in the wrong order.
    stranger = Fernet(Fernet.generate_key()).encrypt(b"sk-lost").decode()
    Upstream.objects.filter(pk=route.upstream.pk).update(secret_encrypted=stranger)
    upstream_update(actor="tests", upstream=route.upstream, timeout=7)  # bumps the routing version
    answer = requests.post(
        f"{gateway.url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {route.raw_key}"},
        timeout=15,
    )
    assert answer.status_code == 503
    assert "decrypt" not in answer.text  # the caller is told the upstream is unavailable
    request_id = answer.headers["X-Gateway-Request-ID"]
    row = finished_row(request_id)
    assert "cannot be decrypted with ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS" in row.error
    lines = wait_until(
        lambda: [line for line in _lines_naming(gateway, request_id) if "decrypted" in line]
    )
    assert f"ERROR proxy.views request_id={request_id} upstream {route.upstream.name}:" in lines[0]


@pytest.mark.parametrize("status", [401, 403])
def test_an_upstream_refusing_the_gateways_secret_is_marked_in_the_row(
    gateway, openai_route, status
):
    answer = requests.post(
        f"{gateway.url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {openai_route.raw_key}", "x-fake-status": str(status)},
        timeout=15,
    )
    assert answer.status_code == status  # the upstream's answer, unchanged
    row = finished_row(answer.headers["X-Gateway-Request-ID"])
    assert row.error.startswith(f"the upstream refused the gateway's credentials ({status})")


def test_a_client_error_of_another_kind_is_not_marked(gateway, openai_route):
    answer = requests.post(
        f"{gateway.url}/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {openai_route.raw_key}", "x-fake-status": "400"},
        timeout=15,
    )
    row = finished_row(answer.headers["X-Gateway-Request-ID"])
    assert answer.status_code == 400 and "credentials" not in row.error
