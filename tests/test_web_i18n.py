"""The pages' gettext catalogs (pure: no Keycloak): every text the templates and the web code mark
is translated in every catalog (de, ru), no catalog keeps a text nobody asks for any more, the
placeholders match, and a plural has every form its language needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from twostep.web import i18n

WEB = Path(i18n.__file__).parent
LANGS = ("de", "ru")
PLURALS = {"de": 2, "ru": 3}


def marked() -> set[object]:
    """What the extraction in translations/babel.cfg finds (the documented pybabel extract)."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
    return {msg for _f, _l, msg, _c, _ctx in extract_from_dir(str(WEB), method_map, options_map=options)}


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)[sdr]", text))


@pytest.mark.parametrize("lang", LANGS)
def test_every_marked_text_is_in_the_catalog(lang: str) -> None:
    wanted = marked()
    assert len(wanted) > 80, "the extraction found the pages' texts"
    with (WEB / "translations" / f"{lang}.po").open("rb") as fh:
        cat = read_po(fh, locale=lang)
    have = {m.id: m for m in cat if m.id}
    assert sorted(map(str, wanted - set(have))) == [], f"not in {lang}.po"
    assert sorted(map(str, set(have) - wanted)) == [], f"obsolete in {lang}.po"
    for mid, m in have.items():
        assert not m.fuzzy, mid
        if isinstance(mid, tuple):
            assert isinstance(m.string, tuple) and len(m.string) == PLURALS[lang] and all(m.string), mid
            for form in m.string:
                assert placeholders(form) == placeholders(mid[1]), (mid, form)
        else:
            assert isinstance(m.string, str) and m.string, f"{mid!r} has no {lang} text"
            assert placeholders(m.string) == placeholders(mid), (mid, m.string)


def test_catalog_reads_and_plural_forms() -> None:
    assert i18n.catalog("en") == {}
    de, ru = i18n.catalog("de"), i18n.catalog("ru")
    assert de["Overview"] == "Übersicht" and ru["Overview"] == "Обзор"
    key = ("%(num)s backup code left", "%(num)s backup codes left")
    assert len(ru[key]) == 3 and len(de[key]) == 2


def test_russian_plurals_by_number() -> None:
    from flask import Flask

    app = Flask(__name__)
    app.secret_key = "x" * 64
    key = ("%(num)s backup code left", "%(num)s backup codes left")
    with app.test_request_context(headers={"Accept-Language": "ru"}):
        forms = [i18n.ngettext(*key, n) for n in (1, 3, 5, 21, 11)]
    ru = i18n.catalog("ru")[key]
    assert forms == [ru[0], ru[1], ru[2], ru[0], ru[2]]
    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert i18n.ngettext(*key, 1) == i18n.catalog("de")[key][0]
        assert i18n.gettext("Overview") == "Übersicht"
