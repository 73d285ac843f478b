"""Bar charts as SVG text: presentation attributes only (the CSP forbids inline style), a title per bar for hover."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 44
MAX_LABELS = 16
MAX_BAR_W = 56.0
BAR_FILL = "#2563eb"
EMPTY_FILL = "#e3e6eb"
AXIS = "#6b7280"
GRID = "#e3e6eb"


@dataclass(frozen=True)
class Bar:
    """One bar: its axis label, its value (None: no data, drawn as a stub) and the words a hover shows."""

    label: str
    value: float | None
    tooltip: str


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value``, so gridlines fall on round numbers."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    *,
    max_value: float | None = None,
    axis_format: str = "{}",
    counts: bool = False,
) -> Markup:
    """An accessible bar chart: <title> and <desc> name it, each bar's <title> gives its number on hover.

    ``counts``: the values are whole numbers, so the four gridlines must fall on whole numbers too.
    """
    highest = max((b.value or 0) for b in bars) if bars else 0
    top = max_value if max_value is not None else nice_max(highest)
    if counts and max_value is None:
        top = max(4.0, math.ceil(highest / 4) * 4.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    every = max(1, math.ceil(len(bars) / MAX_LABELS))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]
    for i in range(5):  # gridlines with their values
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>')
        label = escape(axis_format.format(_fmt(value)))
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="{AXIS}">{label}</text>'
        )
    for i, bar in enumerate(bars):
        width = min(max(slot * 0.7, 1.0), MAX_BAR_W)
        x = LEFT + i * slot + (slot - width) / 2
        if bar.value is None:
            height, fill = 2.0, EMPTY_FILL
        else:
            height, fill = plot_h * min(max(bar.value, 0) / top, 1.0), BAR_FILL
        y = TOP + plot_h - height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{fill}" '
            f'data-value="{"" if bar.value is None else _fmt(bar.value)}"><title>{escape(bar.tooltip)}</title></rect>'
        )
        if i % every == 0:
            cx = LEFT + i * slot + slot / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                f'fill="{AXIS}">{escape(bar.label)}</text>'
            )
    base_y = TOP + plot_h
    parts.append(f'<line x1="{LEFT}" y1="{base_y}" x2="{WIDTH - RIGHT}" y2="{base_y}" stroke="{AXIS}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
