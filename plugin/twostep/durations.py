"""Durations as people write them: 90m, 8h, 1d, 1d12h."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import InvalidInput

_PART = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    raw = text.strip().lower()
    if not raw or _PART.sub("", raw) != "":
        raise InvalidInput(f"cannot read duration {text!r}: use e.g. 30m, 8h, 1d, 1d12h")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(raw))
    if seconds <= 0:
        raise InvalidInput(f"duration {text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else ""]
    out = "".join(parts)
    return out or f"{s}s"
