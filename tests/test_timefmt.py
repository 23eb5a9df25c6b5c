"""Friendly times (twostep.timefmt): en/de/ru wording from CLDR (Babel), UTC stated, time left/ago,
ru plural and case forms, fallback to en, and the locale negotiation."""
# ruff: noqa: RUF001  (Cyrillic text is the point of these tests)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from twostep import timefmt

NOW = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "until 02:59 UTC tomorrow, 7 hours, 59 minutes left"),
    ("de", "bis morgen 02:59 UTC, noch 7 Stunden, 59 Minuten"),
    ("ru", "до 02:59 UTC завтра, осталось: 7 часов 59 минут"),
])
def test_until_tomorrow_with_time_left(locale: str, expected: str) -> None:
    assert timefmt.describe_until(NOW + timedelta(hours=7, minutes=59), NOW, locale) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "until 21:30 UTC today, 2 hours, 30 minutes left"),
    ("de", "bis heute 21:30 UTC, noch 2 Stunden, 30 Minuten"),
    ("ru", "до 21:30 UTC сегодня, осталось: 2 часа 30 минут"),
])
def test_until_today(locale: str, expected: str) -> None:
    assert timefmt.describe_until(NOW + timedelta(hours=2, minutes=30), NOW, locale) == expected


# CLDR puts a narrow no-break space (U+202F) before the Russian year abbreviation.
@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "until 22:00 UTC on Dec 3, 2026, 2 days, 3 hours left"),
    ("de", "bis 03.12.2026 22:00 UTC, noch 2 Tage, 3 Stunden"),
    ("ru", "до 22:00 UTC 3 дек. 2026\u202fг., осталось: 2 дня 3 часа"),
])
def test_until_another_day_shows_the_date(locale: str, expected: str) -> None:
    assert timefmt.describe_until(NOW + timedelta(days=2, hours=3), NOW, locale) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "ended today at 16:55 UTC, 2 hours, 5 minutes ago"),
    ("de", "abgelaufen heute um 16:55 UTC, vor 2 Stunden, 5 Minuten"),
    ("ru", "действовало до 16:55 UTC сегодня, 2 часа 5 минут назад"),
])
def test_until_in_the_past_says_ended(locale: str, expected: str) -> None:
    assert timefmt.describe_until(NOW - timedelta(hours=2, minutes=5), NOW, locale) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "overdue since yesterday at 16:00 UTC, 1 day, 3 hours ago"),
    ("de", "überfällig seit gestern 16:00 UTC, vor 1 Tag, 3 Stunden"),
    ("ru", "срок истёк вчера в 16:00 UTC, 1 день 3 часа назад"),
])
def test_deadline_past_is_overdue(locale: str, expected: str) -> None:
    assert timefmt.describe_deadline(NOW - timedelta(days=1, hours=3), NOW, locale) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "by 19:00 UTC on Dec 8, 2026, 7 days left"),
    ("de", "bis 08.12.2026 19:00 UTC, noch 7 Tage"),
    ("ru", "до 19:00 UTC 8 дек. 2026\u202fг., осталось: 7 дней"),
])
def test_deadline_ahead(locale: str, expected: str) -> None:
    assert timefmt.describe_deadline(NOW + timedelta(days=7), NOW, locale) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "today 16:55 UTC, 2 hours, 5 minutes ago"),
    ("de", "heute 16:55 UTC, vor 2 Stunden, 5 Minuten"),
    ("ru", "сегодня в 16:55 UTC, 2 часа 5 минут назад"),
])
def test_since(locale: str, expected: str) -> None:
    assert timefmt.describe_since(NOW - timedelta(hours=2, minutes=5), NOW, locale) == expected


def test_since_yesterday_and_other_days() -> None:
    assert timefmt.describe_since(NOW - timedelta(hours=20), NOW, "en") == "yesterday 23:00 UTC, 20 hours ago"
    assert timefmt.describe_since(NOW - timedelta(days=3), NOW, "de") == "28.11.2026 19:00 UTC, vor 3 Tagen"
    assert timefmt.describe_at(NOW - timedelta(days=3), NOW, "en") == "Nov 28, 2026, 19:00 UTC"


def test_since_a_time_ahead_of_the_clock_reads_in() -> None:
    assert timefmt.describe_since(NOW + timedelta(minutes=3), NOW, "en") == "today 19:03 UTC, in 3 minutes"
    assert timefmt.describe_since(NOW + timedelta(minutes=21), NOW, "ru") == "сегодня в 19:21 UTC, через 21 минуту"


@pytest.mark.parametrize(("hours", "minutes", "left", "ago"), [
    (1, 1, "1 час 1 минута", "1 час 1 минуту назад"),
    (2, 2, "2 часа 2 минуты", "2 часа 2 минуты назад"),
    (5, 5, "5 часов 5 минут", "5 часов 5 минут назад"),
    (11, 11, "11 часов 11 минут", "11 часов 11 минут назад"),
    (21, 21, "21 час 21 минута", "21 час 21 минуту назад"),
    (22, 22, "22 часа 22 минуты", "22 часа 22 минуты назад"),
])
def test_ru_plural_and_case_forms(hours: int, minutes: int, left: str, ago: str) -> None:
    secs = hours * 3600 + minutes * 60
    assert timefmt.duration(secs, "ru") == left
    assert timefmt.relative(-secs, "ru") == ago


@pytest.mark.parametrize(("days", "text"), [(1, "1 день"), (3, "3 дня"), (5, "5 дней"), (21, "21 день")])
def test_ru_days(days: int, text: str) -> None:
    assert timefmt.duration(days * 86400, "ru") == text


def test_durations_round_down_and_keep_two_adjacent_units() -> None:
    assert timefmt.duration(7 * 3600 + 59 * 60 + 59, "en") == "7 hours, 59 minutes"
    assert timefmt.duration(2 * 86400 + 5 * 60, "en") == "2 days"  # minutes dropped, no "2 days, 5 minutes"
    assert timefmt.duration(45, "en") == "45 seconds"
    assert timefmt.duration(3600, "de") == "1 Stunde"
    assert timefmt.relative(0, "en") == "now"
    assert timefmt.relative(-86400 * 2, "de") == "vor 2 Tagen"  # dative from CLDR's relative pattern


@pytest.mark.parametrize("locale", ["fr", "xx", "", None, "C"])
def test_unknown_locale_falls_back_to_english(locale: str | None) -> None:
    assert timefmt.describe_until(NOW + timedelta(minutes=90), NOW, locale) == (
        "until 20:30 UTC today, 1 hour, 30 minutes left")


def test_regional_tags_use_the_language() -> None:
    assert timefmt.describe_since(NOW - timedelta(minutes=1), NOW, "de-AT") == "heute 18:59 UTC, vor 1 Minute"
    assert timefmt.describe_since(NOW - timedelta(minutes=1), NOW, "ru_RU.UTF-8") == (
        "сегодня в 18:59 UTC, 1 минуту назад")


def test_other_time_zones_are_shown_in_utc() -> None:
    from zoneinfo import ZoneInfo

    berlin = datetime(2026, 12, 2, 3, 59, tzinfo=ZoneInfo("Europe/Berlin"))  # 02:59 UTC
    assert timefmt.describe_until(berlin, NOW, "en") == "until 02:59 UTC tomorrow, 7 hours, 59 minutes left"


def test_negotiation_order_and_limits() -> None:
    assert timefmt.negotiate("ru", "de") == "ru"
    assert timefmt.negotiate(None, "fr", "de_CH") == "de"
    assert timefmt.negotiate(None, ["fr", "ru"], "de") == "ru"
    assert timefmt.negotiate("fr", None) == "en"
    assert timefmt.parse_accept_language("fr-CH, fr;q=0.9, de;q=0.5, ru;q=0.7, en;q=0") == ["ru", "de"]
    assert timefmt.parse_accept_language("de-DE,de;q=0.9,en-US;q=0.8") == ["de", "en"]
    assert timefmt.parse_accept_language("") == []
    assert timefmt.parse_accept_language("ru;q=abc") == []


def test_user_and_realm_locales() -> None:
    assert timefmt.user_locale({"attributes": {"locale": ["de"]}}) == "de"
    assert timefmt.user_locale({"attributes": {}}) is None
    assert timefmt.user_locale(None) is None
    assert timefmt.realm_default_locale({"internationalizationEnabled": True, "defaultLocale": "ru"}) == "ru"
    assert timefmt.realm_default_locale({"internationalizationEnabled": False, "defaultLocale": "ru"}) is None


def test_env_locale_follows_posix_order() -> None:
    assert timefmt.env_locale({"LANG": "de_DE.UTF-8"}) == "de"
    assert timefmt.env_locale({"LC_ALL": "ru_RU.UTF-8", "LANG": "de_DE.UTF-8"}) == "ru"
    assert timefmt.env_locale({"LC_ALL": "", "LC_MESSAGES": "C", "LANG": "de_DE.UTF-8"}) == "en"
    assert timefmt.env_locale({}) == "en"


def test_friendly_reads_iso_and_keeps_odd_values() -> None:
    assert timefmt.friendly("2026-12-02T02:59:00Z", NOW, "en") == "until 02:59 UTC tomorrow, 7 hours, 59 minutes left"
    assert timefmt.friendly("2026-12-01T16:55:00Z", NOW, "en", "since") == "today 16:55 UTC, 2 hours, 5 minutes ago"
    assert timefmt.friendly(None, NOW, "en") == "?"
    assert timefmt.friendly("not a time", NOW, "en") == "not a time"


def test_replace_iso_in_service_messages() -> None:
    msg = "set the bypass marker on eve until 2026-12-02T02:59:00Z"
    assert timefmt.replace_iso(msg, NOW, "en") == (
        "set the bypass marker on eve until 02:59 UTC tomorrow, 7 hours, 59 minutes left")
    assert timefmt.replace_iso("began 2026-12-01T16:55:00Z", NOW, "de") == (
        "began heute 16:55 UTC, vor 2 Stunden, 5 Minuten")
    assert timefmt.replace_iso("no time here", NOW, "en") == "no time here"


@pytest.mark.parametrize(("locale", "today", "other"), [
    ("en", "today at 14:05 UTC", "on Dec 3, 2026 at 14:05 UTC"),
    ("de", "heute um 14:05 UTC", "am 03.12.2026 um 14:05 UTC"),
    ("ru", "сегодня в 14:05 UTC", "3 дек. 2026\u202fг. в 14:05 UTC"),
])
def test_describe_on_for_sentences(locale: str, today: str, other: str) -> None:
    at = NOW.replace(hour=14, minute=5)
    assert timefmt.describe_on(at, NOW, locale) == today
    assert timefmt.describe_on(at + timedelta(days=2), NOW, locale) == other


def test_sub_second_remainders_do_not_cost_a_minute() -> None:
    now = NOW.replace(microsecond=700_000)
    until = NOW + timedelta(hours=8)  # as stored: ISO-8601 to the second
    assert timefmt.describe_until(until, now, "en") == "until 03:00 UTC tomorrow, 8 hours left"
    assert timefmt.describe_until(until - timedelta(seconds=1), now, "en") == (
        "until 02:59 UTC tomorrow, 7 hours, 59 minutes left")
