"""A request's worst case: input bounded by its byte length, output by its limit."""

from __future__ import annotations

import json

import pytest

from limits.worst_case import MAX_OUTPUT_LIMIT, PARSE_BYTES, output_limit, worst_case_tokens


def body(**fields) -> bytes:
    return json.dumps({"model": "m", **fields}).encode()


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        (body(max_tokens=100), 100),
        (body(max_completion_tokens=70), 70),
        (body(max_output_tokens=5), 5),
        (body(max_tokens=100, max_completion_tokens=30), 30),
        (body(), None),
        (body(max_tokens="100"), None),
        (body(max_tokens=-1), None),
        (body(max_tokens=True), None),
        (body(max_tokens=10**30), MAX_OUTPUT_LIMIT),
        (body(max_tokens=MAX_OUTPUT_LIMIT + 1, max_output_tokens=7), 7),
        (b"not json", None),
        (b"[1, 2]", None),
        (b"", None),
        (None, None),
    ],
)
def test_output_limit_is_read_from_the_body(raw, limit):
    assert output_limit(raw) == limit


def test_worst_case_is_body_bytes_plus_the_output_limit_or_the_default():
    raw = body(max_tokens=50)
    assert worst_case_tokens(raw, default_output=4096) == (len(raw), 50)
    raw = body()
    assert worst_case_tokens(raw, default_output=4096) == (len(raw), 4096)
    assert worst_case_tokens(None, default_output=10) == (0, 10)


PROMPT = "x" * (2 * 1024 * 1024)  # a big multimodal prompt's base64, say


def large(tail: str) -> bytes:
    return ('{"messages": [{"role": "user", "content": "' + PROMPT + '"}], ' + tail).encode()


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        (large('"model": "m", "max_tokens": 32000}'), 32000),
        (large('"max_completion_tokens": 70, "max_output_tokens": 5}'), 5),
        (large('"max_tokens":100,"max_tokens" : 7}'), 7),  # the last of duplicate keys
        (large('"max_tokens": 10000000000000000000000000000000}'), MAX_OUTPUT_LIMIT),
        (large('"max_tokens": "100"}'), None),
        (large('"max_tokens": -1}'), None),
        (large('"max_tokens": 1.5}'), None),
        (large('"max_tokens": null}'), None),
        (large('"model": "m"}'), None),
        # In the prompt's text the key's quotes are escaped: not the body's limit.
        (large('"model": "m", "note": "say \\"max_tokens\\": 1"}'), None),
    ],
)
def test_a_body_over_a_mebibyte_has_its_output_limit_found_too(raw, limit):
    assert len(raw) > PARSE_BYTES
    assert output_limit(raw) == limit
    assert worst_case_tokens(raw, default_output=4096) == (len(raw), limit or 4096)
