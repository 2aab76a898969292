"""Model and stream peeked from request bodies, small and large."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.peek import peek_request

JSON = "application/json"


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()


PEEK_CASES = [
    ("plain", b'{"model": "gpt-4o", "messages": []}', JSON, ("gpt-4o", False)),
    ("stream", b'{"model": "claude", "stream": true}', JSON, ("claude", True)),
    ("stream false", b'{"model": "m", "stream": false}', JSON, ("m", False)),
    ("stream as text", b'{"model": "m", "stream": "true"}', JSON, ("m", False)),
    ("stream as 1", b'{"model": "m", "stream": 1}', JSON, ("m", False)),
    ("model not text", b'{"model": 5, "stream": true}', JSON, ("", True)),
    ("no model", b'{"messages": []}', JSON, ("", False)),
    ("charset", b'{"model": "m"}', "application/json; charset=utf-8", ("m", False)),
    ("no content type", b' \n{"model": "m"}', "", ("m", False)),
    ("form type, JSON body", b'{"model": "m"}', "application/x-www-form-urlencoded", ("m", False)),
    ("multipart", b'{"model": "m"}', "multipart/form-data; boundary=x", ("", False)),
    (
        "unicode model",
        '{"model": "mod\u00e8le-\u6a21\u578b"}'.encode(),
        JSON,
        ("mod\u00e8le-\u6a21\u578b", False),
    ),
    ("array", b'[{"model": "m"}]', JSON, ("", False)),
    ("invalid", b'{"model": "m",', JSON, ("", False)),
    ("non-utf8", b'{"model": "\xff\xfe"}', JSON, ("", False)),
    ("nul bytes", b'{"model": "m\x00"}\x00', JSON, ("", False)),
    ("empty", b"", JSON, ("", False)),
    ("deeply nested array", b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}", JSON, ("", False)),
    (
        "deeply nested objects",
        b'{"model": "m", "a":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
        JSON,
        ("", False),
    ),
    ("unbalanced nesting", b"{" * 1_000_000, JSON, ("", False)),
    ("duplicate keys: last wins", b'{"model": "a", "model": "b"}', JSON, ("b", False)),
]


@pytest.mark.parametrize(
    ("name", "body", "content_type", "expected"), PEEK_CASES, ids=[c[0] for c in PEEK_CASES]
)
def test_peek_request(name, body, content_type, expected):
    assert peek_request(body, content_type) == expected


def test_peek_a_large_multimodal_body_finds_model_and_stream_after_the_messages():
    image = "A" * (5 * 1024 * 1024)
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": 'say "model": "fake"'}, {"image": image}],
            }
        ],
        "model": "gpt-4o-mini",
        "stream": True,
        "tools": [
            {
                "parameters": {
                    "properties": {"model": {"type": "string"}, "stream": {"type": "boolean"}}
                }
            }
        ],
    }
    assert peek_request(dumps(body), JSON) == ("gpt-4o-mini", True)


def test_peek_a_large_body_without_the_keys():
    assert peek_request(b'{"input": "' + b"x" * (2 * 1024 * 1024) + b'"}', JSON) == ("", False)
    assert peek_request(b'{"a": "' + b"\xff" * (2 * 1024 * 1024), JSON) == ("", False)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([JSON, "", "text/plain"]))
def test_peek_request_never_raises(body, content_type):
    model, stream = peek_request(b"{" + body, content_type)
    assert isinstance(model, str) and isinstance(stream, bool)
