"""The pages' gettext catalogs: every text the templates and the web code mark is translated in
every catalog (de, ru), no catalog keeps a text nobody asks for any more, the placeholders match,
and a plural has every form its language needs (pure: no Keycloak). Then, against a real Keycloak,
one user's page and the help queue rendered in de and ru have no English sentence left."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from twostep.web import i18n

from tests.conftest import Admin, MakeUser, Twostep, User
from tests.support.bypass_helpers import record_fields
from tests.support.help_helpers import file_request
from tests.support.locale import enable_locales, set_user_locale
from tests.test_overview import english_words
from tests.test_web_app import (  # noqa: F401 - fixtures
    WebApp,
    action_form,
    flashes,
    make_admin,
    people,
    post,
    web,
)

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
            assert isinstance(mid, str), mid
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


# -- pages rendered in de and ru (real Keycloak, real sign-ins) -------------------------------------

TITLES = {"de": ("Ausnahme gewähren", "Hilfeanfragen", "Ausnahme verlängern"),
          "ru": ("Выдать исключение", "Запросы помощи", "Продлить исключение")}


def _flash_english(messages: list[str], names: tuple[str, ...]) -> list[str]:
    """English words in flash messages, leaving out what is marked lang="en" (a service's own text)."""
    text = " ".join(re.sub(r'<span lang="en">.*?</span>', " ", m) for m in messages)
    return english_words("<body>" + text, names)


def test_one_user_page_and_help_queue_in_de_and_ru(web: WebApp, people: tuple[User, User], admin: Admin,  # noqa: F811
                                                   make_user: MakeUser, twostep: Twostep) -> None:
    """boss reads German, ivan Russian (their own `locale`): one user's page (with and without a bypass,
    and their own), the help queue with an open request, and the messages after an action: no English
    sentence left; a service's one-line text is marked lang="en"."""
    boss, eve = people
    ivan = make_user("ivan", otp=True)
    make_admin(admin, web.realm, ivan)
    dan = make_user("dan", otp=True)
    enable_locales(admin, web.realm)
    set_user_locale(admin, web.realm, boss.id, "de")
    set_user_locale(admin, web.realm, ivan.id, "ru")
    assert twostep("bypass", "grant", "dan", "--for", "1d", "--reason", "trip").code == 0
    granted_by = record_fields(admin, web.realm, dan.id)["by"]
    message = "lost my phone on the train"
    file_request(admin, web.realm, eve.id, message)
    names = (boss.username, eve.username, ivan.username, dan.username, web.realm, message, "trip", granted_by)

    drivers: dict[str, Any] = {}
    for who, lang in ((boss, "de"), (ivan, "ru")):
        grant, queue, extend = TITLES[lang]
        d = drivers[lang] = web.sign_in(who, "/admin")
        for path, title in ((f"/admin/users/{eve.id}", grant), (f"/admin/users/{dan.id}", extend),
                            (f"/admin/users/{who.id}", None), ("/admin/help", queue)):
            page = d.open_url(web.url + path)
            assert page.status == 200, (path, page.summary())
            assert f'<html lang="{lang}">' in page.text and "<main>" in page.text, (path, "no lang=en stopgap left")
            assert title is None or title in page.text, (path, title)
            assert not english_words(page.text, names), (english_words(page.text, names), path, lang)

        # A refused action and a done one: the page's messages in the reader's language.
        user_page = d.open_url(f"{web.url}/admin/users/{eve.id}")
        url = f"{web.url}/admin/users/{eve.id}/action"
        refused = flashes(post(d, url, {**action_form(user_page, "grant"), "reason": "r"}))
        assert refused and not _flash_english(refused, names), refused
        ended = post(d, url, {**action_form(user_page, "end_sessions"), "confirm": "yes"})
        assert not _flash_english(flashes(ended), names), flashes(ended)
        expected = {"de": "Sitzungen von eve beendet.", "ru": "сеансов пользователя eve."}[lang]
        assert any(expected in m for m in flashes(ended)), flashes(ended)
        assert not english_words(ended.text, names), english_words(ended.text, names)

    # The help answer's flash: the lead in Russian, the service's list of changes as it is, marked English.
    d = drivers["ru"]  # ivan, still signed in (a second sign-in in the same 30 s would reuse his code)
    queue_page = d.open_url(web.url + "/admin/help")
    done = post(d, f"{web.url}/admin/help/{eve.id}/answer",
                {**action_form(queue_page, "dismiss"), "reason": "not you", "confirm": "yes"})
    (msg,) = flashes(done)
    assert msg.startswith("Выполнено для eve: <span lang=\"en\">") and "closed the help request of eve" in msg, msg
    assert "Пользователь уведомлён:" in msg, msg
