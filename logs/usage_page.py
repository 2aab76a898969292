"""The geometry of the usage page's server-rendered SVG bar charts (no JavaScript, no CDN).

The page's figures are gathered by logs.usage_view."""

from __future__ import annotations

import math
from dataclasses import dataclass

CHART_WIDTH = 720
CHART_HEIGHT = 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 76, 12, 12, 42


def nice_ceiling(value: float, *, fractions: bool = False) -> float:
    """The smallest 1, 2 or 5 x 10^k that is >= value: a readable axis top.

    At least 1, unless fractions (dollar amounts): then a peak of $0.03 gets a $0.05 top.
    """
    if value <= 0 or (value <= 1 and not fractions):
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10**exponent if exponent >= 0 else step / 10**-exponent
        if top >= value * (1 - 1e-12):
            return int(top) if top >= 1 else top
    return int(10 ** (exponent + 1))


def usd_axis(value: float) -> str:
    return f"${value:,.0f}" if value >= 10 or value == 0 else f"${value:g}"


def compact_number(value: int) -> str:
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(value)


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    # The stacked lower part (e.g. errors within requests); 0 when none.
    part_y: float
    part_height: float
    label: str
    tooltip: str


def bar_chart(
    series: list[tuple[str, float, float]],
    *,
    unit: str,
    part_name: str = "",
    money: bool = False,
    title: str = "",
) -> dict:
    """Geometry for a bar chart of (label, value, part) per day; part is stacked at the bottom.

    money: values are dollars (axis and tooltips as $, tops below $1 allowed).
    """
    plot_w = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = nice_ceiling(max((v for _, v, _ in series), default=0), fractions=money)
    step = plot_w / max(len(series), 1)
    bottom = MARGIN_TOP + plot_h
    bars = []
    for i, (label, value, part) in enumerate(series):
        height = plot_h * value / top
        part_height = plot_h * min(part, value) / top
        tooltip = f"{label}: ${value:,.4f}" if money else f"{label}: {value:,} {unit}"
        if part_name and part:
            tooltip += f" ({part:,} {part_name})"
        bars.append(
            Bar(
                x=round(MARGIN_LEFT + i * step + step * 0.15, 2),
                width=round(step * 0.7, 2),
                y=round(bottom - height, 2),
                height=round(height, 2),
                part_y=round(bottom - part_height, 2),
                part_height=round(part_height, 2),
                label=label,
                tooltip=tooltip,
            )
        )
    if money:
        intervals = 4 if f"{top:g}".lstrip("0.").startswith("2") else 5
        labels = [usd_axis(top * i / intervals) for i in range(intervals + 1)]
    else:
        # 4 or 5 intervals when they fall on whole numbers (top is 1, 2 or 5 x 10^k).
        intervals = next(n for n in (4, 5, 2, 1) if top % n == 0)
        labels = [compact_number(top * i // intervals) for i in range(intervals + 1)]
    grid = [
        {"y": round(bottom - plot_h * i / intervals, 2), "label": labels[i]}
        for i in range(intervals + 1)
    ]
    # About six dates under the bars, and the last one, keep the axis readable.
    every = max(1, math.ceil(len(bars) / 6))
    ticks = [
        {"x": round(b.x + b.width / 2, 2), "label": b.label[5:]}
        for i, b in enumerate(bars)
        if i % every == 0 or i == len(bars) - 1
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": MARGIN_LEFT,
        "right": CHART_WIDTH - MARGIN_RIGHT,
        "bottom": bottom,
        "label_y": bottom + 16,
        "bars": bars,
        "grid": grid,
        "ticks": ticks,
        "unit": unit,
        "part_name": part_name,
        "title": title,
        # Axis titles: what the bars count, and the days under them.
        "y_title": "USD" if money else unit,
        "y_title_x": 14,
        "y_title_y": MARGIN_TOP + plot_h / 2,
        "x_title": "day (UTC)",
        "x_title_x": MARGIN_LEFT + plot_w / 2,
        "x_title_y": CHART_HEIGHT - 2,
    }
