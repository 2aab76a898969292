"""How the admin pages write money and statuses (pure functions, tables)."""

from decimal import Decimal

import pytest

from gatewaysite.presentation import key_status_badge, status_badge, status_class, usd


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        ("", "—"),
        (Decimal(0), "$0.00"),
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("0.01"), "$0.01"),
        (Decimal("0.004567"), "$0.004567"),
        ("0.000123456", "$0.0001235"),
        (Decimal("0.0000012"), "$1.20e-06"),
    ],
)
def test_usd(value, shown):
    assert usd(value) == shown


@pytest.mark.parametrize(
    ("status", "css"),
    [
        (200, "gw-ok"),
        (204, "gw-ok"),
        (304, "gw-info"),
        (429, "gw-warn"),
        (502, "gw-bad"),
        (529, "gw-bad"),
        (0, "gw-bad"),
        (None, "gw-bad"),
        (101, "gw-muted"),
    ],
)
def test_status_class(status, css):
    assert status_class(status) == css


def test_badges_escape_and_title_their_value():
    assert 'title="no answer came"' in status_badge(0)
    assert '<span class="gw-badge gw-bad" title="HTTP 503">503</span>' == status_badge(503)
    assert "gw-warn" in key_status_badge("grace", "until <tomorrow>")
    assert "&lt;tomorrow&gt;" in key_status_badge("grace", "until <tomorrow>")
