"""Charts drawn on the server as inline SVG (the pages run no scripts: CSP). Each chart is an image
(role="img") whose <title> carries its numbers as text, and the page shows the same numbers beside
it, so a screen reader loses nothing. Colours are presentation attributes, no inline script or style.

    {{ stacked_bar([(label, value, "ok"), ...], title) }}
    {{ trend_chart(history, labels) }}
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from flask import Flask
from markupsafe import Markup, escape

COLOURS = {"ok": "#1e6b2e", "grace": "#0b5cad", "bad": "#a4161a", "warn": "#8a5a00", "none": "#d5dade"}
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def stacked_bar(parts: Sequence[tuple[str, int, str]], title: str, width: int = 300, height: int = 18) -> Markup:
    """One horizontal bar split into `parts` (label, value, colour key), scaled to their sum."""
    total = sum(max(0, v) for _l, v, _c in parts)
    tid = _id("bar")
    words = title + ": " + "; ".join(f"{label} {value}" for label, value, _c in parts)
    rects = []
    x = 0.0
    for _label, value, colour in parts:
        if value <= 0 or total <= 0:
            continue
        w = width * value / total
        rects.append(Markup('<rect x="{:.1f}" y="0" width="{:.1f}" height="{}" fill="{}"/>').format(
            x, w, height, COLOURS.get(colour, COLOURS["none"])))
        x += w
    if not rects:
        rects.append(Markup('<rect x="0" y="0" width="{}" height="{}" fill="{}"/>').format(
            width, height, COLOURS["none"]))
    return Markup('<svg class="chart bar" role="img" aria-labelledby="{}" viewBox="0 0 {} {}" width="100%" '
                  'height="{}" preserveAspectRatio="none"><title id="{}">{}</title>{}</svg>').format(
        tid, width, height, height, tid, words, Markup("").join(rects))


def trend_chart(history: Sequence[Sequence[Any]], title: str, scope_label: str, enrolled_label: str,
                width: int = 600, height: int = 160) -> Markup:
    """Enrolled against in scope, one point per day of `history` ([date, in scope, enrolled])."""
    tid = _id("trend")
    rows = [(str(e[0]), int(e[1]), int(e[2])) for e in history]
    words = title + ": " + "; ".join(f"{d}: {enrolled_label} {en}, {scope_label} {sc}" for d, sc, en in rows)
    if not rows:
        words = title
    pad = 24
    top = max([sc for _d, sc, _e in rows] + [1])
    step = (width - 2 * pad) / max(1, len(rows) - 1)

    def points(index: int) -> str:
        values = [sc if index == 1 else en for _d, sc, en in rows]
        return " ".join(f"{pad + i * step:.1f},{height - pad - (v * (height - 2 * pad) / top):.1f}"
                        for i, v in enumerate(values))

    parts = [Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#5b6670"/>').format(
        pad, height - pad, width - pad, height - pad)]
    if rows:
        for index, colour in ((1, COLOURS["grace"]), (2, COLOURS["ok"])):
            if len(rows) == 1:
                x, y = points(index).split(",")
                parts.append(Markup('<circle cx="{}" cy="{}" r="4" fill="{}"/>').format(x, y, colour))
            else:
                parts.append(Markup('<polyline fill="none" stroke="{}" stroke-width="2.5" points="{}"/>').format(
                    colour, points(index)))
        parts.append(Markup('<text x="{}" y="{}" font-size="11" fill="#1d2329">{}</text>').format(
            pad, height - 6, rows[0][0]))
        parts.append(Markup('<text x="{}" y="{}" font-size="11" fill="#1d2329" text-anchor="end">{}</text>').format(
            width - pad, height - 6, rows[-1][0]))
        parts.append(Markup('<text x="{}" y="{}" font-size="11" fill="#1d2329">{}</text>').format(pad, 14, top))
    return Markup('<svg class="chart trend" role="img" aria-labelledby="{}" viewBox="0 0 {} {}" width="100%">'
                  '<title id="{}">{}</title>{}</svg>').format(
        tid, width, height, tid, escape(words), Markup("").join(parts))


def register(app: Flask) -> None:
    app.add_template_global(stacked_bar)
    app.add_template_global(trend_chart)
