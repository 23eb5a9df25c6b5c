"""Times on the pages in the viewer's language: Jinja filters over twostep.timefmt.

    {{ bypass.until|time_until }}     -> <time datetime="2026-12-02T02:59:00Z" lang="en">until 02:59 UTC
                                         tomorrow, 7 hours, 59 minutes left</time>
    {{ deadline|time_deadline }}, {{ d.created|time_since }}, {{ e.ts|time_at }}

The language: the signed-in person's `locale` claim (Keycloak's `profile` scope maps the user's
`locale` attribute), else the browser's Accept-Language, else en; only en, de and ru. The ISO-8601
value stays in the `datetime` attribute (machines and tests read that); `lang` tells screen readers
which language the text is in.

The pages' words: gettext catalogs (`translations/de.po`, `translations/ru.po`; English is the
source) read with Babel at start, no compile step; templates mark text with {{ _("...") }} and
{{ ngettext(...) }} (Jinja's i18n extension, new style: %(name)s placeholders, autoescaped).
tests/test_web_i18n.py checks that every marked text is in every catalog.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.pofile import read_po
from flask import Flask, g, has_request_context, request, session
from markupsafe import Markup, escape

from .. import timefmt
from ..errors import InvalidInput
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


TRANSLATIONS = Path(__file__).parent / "translations"


@lru_cache(maxsize=4)
def catalog(lang: str) -> dict[Any, Any]:
    """msgid (a tuple (singular, plural) for plural entries) -> msgstr (a tuple for plurals); empty
    for en and for a language without a file."""
    path = TRANSLATIONS / f"{lang}.po"
    if lang == timefmt.DEFAULT or not path.is_file():
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy}


def N_(message: str) -> str:
    """Marks a text for the catalogs where it is written down (a constant); gettext translates it where
    it is shown, in the viewer's language then."""
    return message


def gettext(message: str) -> str:
    found = catalog(viewer_locale()).get(message)
    return found if isinstance(found, str) and found else message


_PLURAL_INDEX = {"one": 0, "few": 1, "many": 2, "other": 2}


def ngettext(singular: str, plural: str, n: int) -> str:
    lang = viewer_locale()
    found = catalog(lang).get((singular, plural))
    if isinstance(found, tuple) and all(found):
        form = Locale.parse(lang).plural_form(abs(n))
        index = (_PLURAL_INDEX.get(form, 2) if lang == "ru" else (0 if form == "one" else 1))
        return str(found[min(index, len(found) - 1)])
    return singular if n == 1 else plural


def untranslated(text: str) -> Markup:
    """A text with no translation (Keycloak's or the admin extension's one-line message, a service's
    list of changes): on a page in another language it is marked lang="en" for screen readers."""
    if viewer_locale() == timefmt.DEFAULT:
        return escape(text)
    return Markup('<span lang="en">{}</span>').format(text)


class Refusal(InvalidInput):
    """Bad input the page itself finds: its message is already in the viewer's language."""


def nothing_changed(exc: Exception, lead: str | None = None, times: bool = True) -> Markup:
    """A refused action's flash: the lead in the viewer's words, then the reason (a Refusal's in
    their words, a service's or Keycloak's one line as it is, marked English)."""
    text = humanize(str(exc)) if times else str(exc)
    reason = escape(text) if isinstance(exc, Refusal) else untranslated(text)
    return Markup("{} {}").format(gettext("Nothing was changed:") if lead is None else lead, reason)


def notify_outcome(outcome: str) -> Markup:
    """notify.notify_user's "sent", "skipped: why" or "failed: why" in the viewer's words (the why as is)."""
    result, sep, why = str(outcome).partition(": ")
    word = {"sent": gettext("sent"), "skipped": gettext("skipped"), "failed": gettext("failed")}.get(result)
    if word is None:
        return untranslated(str(outcome))
    return escape(word) + (Markup(": ") + untranslated(why) if sep else Markup(""))


def register(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    app.add_template_global(viewer_locale, "viewer_locale")
    app.add_template_filter(notify_outcome, "notify_outcome")
    for kind in ("until", "deadline", "since", "at"):
        app.add_template_filter(_filter(kind), f"time_{kind}")
