"""What the admin site shows of a key's limits: the current window's spend, with a bar."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join

from limits.selectors import limits_view_for_keys


def _bar(label: str, used, reserved, budget) -> str:
    used_pct = min(100.0, float(used) * 100 / float(budget)) if budget else 100.0
    reserved_pct = min(100.0 - used_pct, float(reserved) * 100 / float(budget)) if budget else 0.0
    return format_html(
        '<div class="gw-spend">{}: {} spent, {} reserved of {} ({}%)'
        '<span class="gw-bar{}" role="progressbar" aria-label="{} budget used" '
        'aria-valuenow="{}" aria-valuemin="0" aria-valuemax="100">'
        '<span class="gw-bar-used" style="width:{}%"></span>'
        '<span class="gw-bar-reserved" style="width:{}%"></span></span></div>',
        label,
        used,
        reserved,
        budget,
        f"{used_pct:.0f}",
        " gw-bar-hot" if used_pct + reserved_pct >= 90 else "",
        label,
        f"{used_pct:.0f}",
        f"{used_pct:.2f}",
        f"{reserved_pct:.2f}",
    )


def spend_summary_html(key) -> str:
    """The key's current budget window, with a bar per budget; a line when it has none."""
    view = limits_view_for_keys(keys=[key])[key.pk]
    spend = view.spend
    resets = spend["resets_at"]
    window = format_html(
        "Window: {} from {} (UTC){}",
        spend["period"],
        f"{spend['window_start']:%Y-%m-%d}",
        format_html(", resets {} UTC", f"{resets:%Y-%m-%d %H:%M}") if resets else "",
    )
    bars = []
    if view.budget_usd is not None:
        bars.append(("USD", spend["spent_usd"], spend["reserved_usd"], view.budget_usd))
    if view.budget_tokens is not None:
        bars.append(("Tokens", spend["spent_tokens"], spend["reserved_tokens"], view.budget_tokens))
    if not bars:
        return format_html("{}<br>No budget set.", window)
    return format_html("{}{}", window, format_html_join("", "{}", ((_bar(*bar),) for bar in bars)))
