"""How the admin pages write the gateway's values: money, request statuses, key statuses.

Pure functions (tested with tables in gatewaysite/tests/test_presentation.py); the
colours are CSS classes of gateway/admin.css, built on the admin's own variables.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.html import format_html

# One colour per class of answer: success, redirect, the client's fault, a failure.
STATUS_CLASSES = {2: "gw-ok", 3: "gw-info", 4: "gw-warn", 5: "gw-bad"}
# One colour per key status (keys.models status vocabulary).
KEY_STATUS_CLASSES = {
    "active": "gw-ok",
    "grace": "gw-warn",
    "expired": "gw-muted",
    "revoked": "gw-bad",
}


def usd(value) -> str:
    """$1,234.56 from a cent up, four significant figures below it; "—" when unknown."""
    if value is None or value == "":
        return "—"
    amount = Decimal(value)
    if amount == 0:
        return "$0.00"
    if abs(amount) >= Decimal("0.01"):
        return f"${amount:,.2f}"
    return f"${float(amount):.4g}" if abs(amount) >= Decimal("1e-4") else f"${float(amount):.2e}"


def status_class(status_code: int | None) -> str:
    """The CSS class of a request's status: 0 (no answer came) counts as a failure."""
    if not status_code:
        return "gw-bad"
    return STATUS_CLASSES.get(status_code // 100, "gw-muted")


def status_badge(status_code: int | None) -> str:
    label = "—" if status_code is None else ("0" if status_code == 0 else str(status_code))
    title = "no answer came" if status_code == 0 else f"HTTP {status_code}"
    return format_html(
        '<span class="gw-badge {}" title="{}">{}</span>', status_class(status_code), title, label
    )


def key_status_badge(status: str, detail: str = "") -> str:
    return format_html(
        '<span class="gw-badge {}"{}>{}</span>',
        KEY_STATUS_CLASSES.get(status, "gw-muted"),
        format_html(' title="{}"', detail) if detail else "",
        status,
    )
