"""proxy.aliases: only the top-level model string changes, byte for byte elsewhere."""

from __future__ import annotations

import pytest

from proxy.aliases import with_model


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model":"fast","messages":[]}', b'{"model":"gpt-4o-mini","messages":[]}'),
        (
            b'{ "messages" : [{"role":"user","content":"model: fast"}] ,\n "model" :  "fast" }',
            b'{ "messages" : [{"role":"user","content":"model: fast"}] ,\n "model" :  "gpt-4o-mini" }',
        ),
        # Nested "model" keys (tools, metadata) stay as they are.
        (
            b'{"metadata":{"model":"fast"},"model":"fast","temperature":1.0E0}',
            b'{"metadata":{"model":"fast"},"model":"gpt-4o-mini","temperature":1.0E0}',
        ),
        # Escapes and non-ASCII elsewhere are kept exactly as the client wrote them.
        (
            '{"model":"f\\u0061st","x":"\\u00e9 é \\n"}'.encode(),
            '{"model":"gpt-4o-mini","x":"\\u00e9 é \\n"}'.encode(),
        ),
    ],
)
def test_only_the_model_value_changes(body, expected):
    assert with_model(body, "gpt-4o-mini") == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"messages":[]}',  # no model
        b'{"model":42}',  # not a string
        b'{"model":"fast"',  # cut short
        b'{"model":"fast"} trailing',
        b'\xff{"model":"fast"}',
        b"not json",
    ],
)
def test_a_body_that_cannot_be_rewritten_is_left_alone(body):
    assert with_model(body, "gpt-4o-mini") is None
