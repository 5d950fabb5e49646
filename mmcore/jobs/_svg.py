"""Small inline-SVG bar charts for ``mmcore report``: no plotting library, no script.

Every label that reaches the SVG is escaped here (labels may come from untrusted data: shard
names, status names from a Parquet file). Colours are attributes, not CSS classes, so that the
same SVG text renders alike inline in the HTML page and as a standalone file next to report.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

BAR = "#4a78c2"
TEXT = "#222"
AXIS = "#888"
FONT = 'font-family="system-ui, sans-serif"'
WIDTH = 680


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def _count(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _short(c: int) -> str:
    """A count in at most 5 characters: 999, 21.2k, 3.4M."""
    if c < 1000:
        return str(c)
    for unit, k in (("k", 1e3), ("M", 1e6)):
        if c / k < 999.5:
            return f"{c / k:.3g}{unit}"
    return f"{c / 1e9:.3g}G"


def hbar(
    rows: Sequence[tuple[str, float]],
    *,
    label: str,
    fmt: Callable[[float], str] = _count,
) -> str:
    """Horizontal bars, one per ``(name, value)`` row, longest scaled to the plot width; the value
    is printed after each bar and in the bar's tooltip. ``label`` is the chart's accessible name."""
    row_h, value_w = 22, 90
    name_w = min(250, 16 + 8 * max((len(_clip(n, 30)) for n, _ in rows), default=4))
    plot_w = WIDTH - name_w - value_w
    top = max((v for _, v in rows), default=0.0)
    height = row_h * len(rows) + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" {FONT} font-size="12">'
    ]
    for i, (name, v) in enumerate(rows):
        y = 4 + i * row_h
        w = 0.0 if top <= 0 else max(1.0, plot_w * v / top) if v > 0 else 0.0
        tip = escape(f"{name}: {fmt(v)}")
        out.append(
            f'<text x="{name_w - 6}" y="{y + 15}" text-anchor="end" fill="{TEXT}">'
            f"{escape(_clip(name, 30))}</text>"
            f'<rect x="{name_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{BAR}">'
            f"<title>{tip}</title></rect>"
            f'<text x="{name_w + w + 5:.1f}" y="{y + 15}" fill="{TEXT}">{escape(fmt(v))}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def histogram(bins: Sequence[tuple[str, int]], *, label: str, log: bool = False) -> str:
    """Vertical bars, one per ``(bin label, count)``, with the count above each bar. ``log``
    scales bar heights by log(1 + count), for counts that span decades (cluster sizes)."""
    n = max(1, len(bins))
    left, right, top_m, bottom = 40, 40, 18, 30
    height = 240
    plot_w, plot_h = WIDTH - left - right, height - top_m - bottom
    bar_w = plot_w / n
    top = max((c for _, c in bins), default=0)

    def scale(c: int) -> float:
        if top <= 0 or c <= 0:
            return 0.0
        if log:
            return plot_h * math.log1p(c) / math.log1p(top)
        return plot_h * c / top

    label_px = 6.5 * max((len(_clip(name, 16)) for name, _ in bins), default=1) + 8
    every = max(1, math.ceil(label_px / bar_w))  # x labels that do not overlap
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" {FONT} font-size="11">',
        f'<line x1="{left}" y1="{top_m + plot_h}" x2="{left + plot_w}" y2="{top_m + plot_h}" '
        f'stroke="{AXIS}"/>',
    ]
    for i, (name, c) in enumerate(bins):
        x = left + i * bar_w
        h = scale(c)
        cx = x + bar_w / 2
        out.append(
            f'<rect x="{x + 1:.1f}" y="{top_m + plot_h - h:.1f}" width="{max(1.0, bar_w - 2):.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>{escape(f"{name}: {c:,}")}</title></rect>'
        )
        if c and 5.5 * len(_short(c)) <= bar_w:
            out.append(
                f'<text x="{cx:.1f}" y="{top_m + plot_h - h - 3:.1f}" text-anchor="middle" '
                f'font-size="9" fill="{TEXT}">{_short(c)}</text>'
            )
        if i % every == 0:
            out.append(
                f'<text x="{cx:.1f}" y="{top_m + plot_h + 15}" text-anchor="middle" fill="{TEXT}">'
                f"{escape(_clip(name, 16))}</text>"
            )
    if log:
        out.append(f'<text x="{WIDTH - right}" y="12" text-anchor="end" fill="{AXIS}">log scale</text>')
    out.append("</svg>")
    return "".join(out)
