"""Template filters of the gateway's admin pages: money, counts, shares and status badges."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from gatewaysite.presentation import key_status_badge, status_badge, usd

register = template.Library()
# A missing value reaches a filter as "" (the template engine's string_if_invalid): "—".


@register.filter(name="usd")
def usd_filter(value) -> str:
    """$1,234.56 from a dollar and up, four significant figures below; an em dash for unknown."""
    return usd(value)


@register.filter
def percent(value) -> str:
    return "—" if value in (None, "") else f"{float(value) * 100:.1f}%"


@register.filter
def count(value) -> str:
    return "—" if value in (None, "") else f"{int(value):,}"


@register.filter
def ms(value) -> str:
    return "—" if value in (None, "") else f"{float(value):,.0f} ms"


@register.filter(name="status_badge")
def status_badge_filter(status_code) -> str:
    return status_badge(status_code)


@register.simple_tag
def bar(percent_used, percent_reserved=0) -> str:
    used = max(0.0, min(100.0, float(percent_used)))
    reserved = max(0.0, min(100.0 - used, float(percent_reserved or 0)))
    return format_html(
        '<span class="gw-bar{}" role="progressbar" aria-valuenow="{}" aria-valuemin="0" '
        'aria-valuemax="100"><span class="gw-bar-used" style="width:{}%"></span>'
        '<span class="gw-bar-reserved" style="width:{}%"></span></span>',
        " gw-bar-hot" if used + reserved >= 90 else "",
        f"{used:.0f}",
        f"{used:.2f}",
        f"{reserved:.2f}",
    )


@register.filter
def key_badge(status: str) -> str:
    return key_status_badge(status)
