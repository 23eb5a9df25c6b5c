"""Times on the pages in the viewer's language: Jinja filters over twostep.timefmt.

    {{ bypass.until|time_until }}     -> <time datetime="2026-12-02T02:59:00Z" lang="en">until 02:59 UTC
                                         tomorrow, 7 hours, 59 minutes left</time>
    {{ deadline|time_deadline }}, {{ d.created|time_since }}, {{ e.ts|time_at }}

The language: the signed-in person's `locale` claim (Keycloak's `profile` scope maps the user's
`locale` attribute), else the browser's Accept-Language, else en; only en, de and ru. The ISO-8601
value stays in the `datetime` attribute (machines and tests read that); `lang` tells screen readers
which language the text is in, since the rest of the page is English.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, has_request_context, request, session
from markupsafe import Markup, escape

from .. import timefmt
from ..policy import utc_iso
from .auth import state


def viewer_locale() -> str:
    """en, de or ru for the current request (computed once per request)."""
    if not has_request_context():
        return timefmt.DEFAULT
    cached = getattr(g, "twostep_locale", None)
    if isinstance(cached, str):
        return cached
    me = session.get("user") or {}
    lang = timefmt.negotiate(me.get("locale") if isinstance(me, dict) else None,
                             timefmt.parse_accept_language(request.headers.get("Accept-Language")))
    g.twostep_locale = lang
    return lang


def _filter(kind: str) -> Any:
    def show(value: Any) -> Markup:
        ts = timefmt.parse(value)
        if ts is None:
            return escape("?" if value in (None, "") else str(value))
        lang = viewer_locale()
        now = state().clock()
        text = timefmt.friendly(ts, now, lang, kind)
        return Markup('<time datetime="{}" lang="{}">{}</time>').format(utc_iso(ts), lang, text)

    return show


def humanize(message: str) -> str:
    """A service message with ISO times ("... until 2026-12-02T02:59:00Z") in the viewer's wording."""
    return timefmt.replace_iso(message, state().clock(), viewer_locale())


def register(app: Flask) -> None:
    for kind in ("until", "deadline", "since", "at"):
        app.add_template_filter(_filter(kind), f"time_{kind}")
