"""The upstream's error.message in the log row: both shapes, cut to 500 characters, no secret."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from proxy.upstream_error import upstream_error_message
from testing.helpers import finished_row

SECRET = "sk-upstream-0123456789abcdef"


def body(obj) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (body({"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}),
         "Rate limit reached"),
        (body({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
         "Overloaded"),
        (body({"error": "plain text error"}), "plain text error"),
        (body({"message": "top-level message"}), "top-level message"),
        (body({"error": {"message": "x" * 900}}), "x" * 500),
        (body({"error": {"message": f"Incorrect API key provided: {SECRET}."}}),
         "Incorrect API key provided: sk-***cdef."),
        (body({"error": {"message": "key sk-auto-AbCdEfGhIjKlMnOp is bad"}}),
         "key sk-auto-AbCd*** is bad"),
        (body({"error": {"message": "line\x00one\nline two"}}), "line one\nline two"),
        (body({"error": {"code": 500}}), ""),
        (b"<html>Bad gateway</html>", ""),
        (body([1, 2]), ""),
    ],
)  # fmt: skip
def test_the_message_is_read_from_either_shape_and_cleaned(raw, expected):
    assert upstream_error_message(raw, secret=SECRET, secret_mask="sk-***cdef") == expected


def test_a_compressed_error_body_is_read():
    raw = gzip.compress(body({"error": {"message": "zipped"}}))
    assert upstream_error_message(raw, content_encoding="gzip") == "zipped"
    assert upstream_error_message(raw, content_encoding="br") == ""


@pytest.mark.parametrize(
    ("provider_name", "path", "status"),
    [
        ("openai", "/v1/chat/completions", 429),
        ("openai", "/v1/chat/completions", 500),
        ("anthropic", "/v1/messages", 529),
        ("anthropic", "/v1/messages", 400),
    ],
)
def test_an_upstream_error_answer_puts_its_message_in_the_row(
    make_route, provider_name, path, status
):
    route = make_route(provider=provider_name, timeout=5)
    response = requests.post(
        f"{route.gateway_url}{path}",
        json={"model": "m", "max_tokens": 5, "messages": [], "stream": True},
        headers={"Authorization": f"Bearer {route.raw_key}", "x-fake-status": str(status)},
        timeout=15,
    )
    assert response.status_code == status
    assert response.json()["error"]["message"] == f"Fake error {status}"  # passed through
    row = finished_row(response.headers["X-Gateway-Request-ID"])
    assert (row.status_code, row.error) == (status, f"Fake error {status}")
    assert row.cost_usd is None
