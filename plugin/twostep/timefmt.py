"""Times shown to people: in their language (en, de, ru), in UTC (said so), with the time left or gone.

    describe_until(until, now, "en")    -> "until 02:59 UTC tomorrow, 7 hours, 59 minutes left"
    describe_until(ended, now, "en")    -> "ended today at 02:59 UTC, 3 hours ago"
    describe_deadline(due, now, "de")   -> "bis morgen 02:59 UTC, noch 7 Stunden, 59 Minuten"
    describe_deadline(past, now, "ru")  -> "срок истёк вчера в 02:59 UTC, 1 день 3 часа назад"
    describe_since(made, now, "ru")     -> "сегодня в 14:05 UTC, 2 часа 21 минуту назад"

Pure functions: the clock reading comes in as `now` (tests pass a fixed one). Every word that depends
on a number (units, their plural and case forms, "ago"/"in", "today"/"tomorrow") comes from CLDR
through Babel; only the few sentence frames around them are written here, per language. Machine
output (--json, the audit file, HTML `datetime` attributes) keeps ISO-8601 (policy.utc_iso): these
texts are for reading, never for parsing.

Durations are cut to minutes (at most two units: days+hours, hours+minutes) and rounded down, so
"left" never promises more time than there is.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.lists import format_list

SUPPORTED = ("en", "de", "ru")
DEFAULT = "en"
FRAMES_FILE = Path(__file__).resolve().parent / "timefmt_frames.toml"
_FRAME_KINDS = ("until", "ended", "by", "overdue", "at", "on")


def _load_frames() -> dict[str, dict[str, str]]:
    """The frames of timefmt_frames.toml: for every supported language a _day and a _date frame of each
    kind and a "left" frame (a file missing one is a packaging error, raised at import)."""
    data = tomllib.loads(FRAMES_FILE.read_text(encoding="utf-8"))
    keys = {"left", *(kind + end for kind in _FRAME_KINDS for end in ("_day", "_date"))}
    out: dict[str, dict[str, str]] = {}
    for lang in SUPPORTED:
        frames = data.get(lang)
        if not isinstance(frames, dict) or set(frames) != keys or not all(isinstance(v, str) for v in frames.values()):
            raise RuntimeError(f"timefmt_frames.toml: the frames of {lang!r} are not {sorted(keys)}")
        out[lang] = dict(frames)
    return out


# Sentence frames per language ({time}, {day}, {date}; "left" takes the duration): data, in
# timefmt_frames.toml next to this module, which says what each placeholder holds.
_FRAMES: dict[str, dict[str, str]] = _load_frames()

Unit = Literal["day", "hour", "minute", "second"]
_UNITS: tuple[tuple[Unit, int], ...] = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_NO_LIMIT = 1e12  # format_timedelta threshold that keeps it on the unit we ask for (no rounding up)


# -- locale choice ---------------------------------------------------------------------------------

def normalize(tag: str | None) -> str | None:
    """"de-AT", "de_DE.UTF-8", "RU" -> "de"/"ru"; None when it is none of the supported languages."""
    if not tag:
        return None
    lang = re.split(r"[-_.@]", tag.strip().lower(), maxsplit=1)[0]
    return lang if lang in SUPPORTED else None


def parse_accept_language(header: str | None) -> list[str]:
    """Supported languages of an Accept-Language header, best first (q=0 excluded)."""
    ranked: list[tuple[float, int, str]] = []
    for i, item in enumerate((header or "").split(",")):
        tag, _sep, params = item.strip().partition(";")
        q = 1.0
        m = re.search(r"q\s*=\s*([^;\s]*)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0  # a malformed weight: the entry is ignored rather than taken as q=1
        lang = normalize(tag)
        if lang and q > 0:
            ranked.append((-q, i, lang))
    out: list[str] = []
    for _q, _i, lang in sorted(ranked):
        if lang not in out:
            out.append(lang)
    return out


def negotiate(*candidates: str | Iterable[str] | None) -> str:
    """The first supported language among the candidates, in order (e.g. the user's `locale`
    attribute, then Accept-Language, then the realm default); en when none fits."""
    for cand in candidates:
        for tag in ([cand] if cand is None or isinstance(cand, str) else cand):
            lang = normalize(tag)
            if lang:
                return lang
    return DEFAULT


def user_locale(user: Mapping[str, Any] | None) -> str | None:
    """A Keycloak user representation's `locale` attribute (attributes hold lists)."""
    attrs = (user or {}).get("attributes") or {}
    value = attrs.get("locale") if isinstance(attrs, Mapping) else None
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def realm_default_locale(realm: Mapping[str, Any] | None) -> str | None:
    """The realm's default language when internationalization is on (realm representation)."""
    rep = realm or {}
    if not rep.get("internationalizationEnabled"):
        return None
    value = rep.get("defaultLocale")
    return value if isinstance(value, str) else None


def env_locale(environ: Mapping[str, str] | None = None) -> str:
    """The CLI's language from LC_ALL, LC_MESSAGES or LANG (POSIX order); en when unset or "C"."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(name):
            return negotiate(env[name])
    return DEFAULT


# -- pieces ----------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def _lang(locale: str | None) -> str:
    return normalize(locale) or DEFAULT


def _utc(ts: datetime) -> datetime:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)


def _delta(when: datetime, now: datetime) -> float:
    """Seconds from now to when, both cut to whole seconds first: stored times have no fractions
    (ISO-8601 to the second), so an 8 h grant read back reads 8 h, not 7 h 59 min 59.3 s."""
    return (_utc(when).replace(microsecond=0) - _utc(now).replace(microsecond=0)).total_seconds()


def _parts(seconds: float) -> list[tuple[int, Unit]]:
    """(value, unit) of a duration, most significant first, at most two, rounded down."""
    total = round(abs(seconds))
    if total < 60:
        return [(total, "second")]
    total -= total % 60
    out: list[tuple[int, Unit]] = []
    for unit, size in _UNITS:
        value, total = divmod(total, size)
        if value and len(out) < 2:
            out.append((value, unit))
        elif out:
            break  # only adjacent units: "2 days, 3 hours", never "2 days, 5 minutes"
    return out


def _plain(value: int, unit: Unit, lang: str) -> str:
    """"2 часа": the CLDR long unit form (nominative) with the plural form CLDR gives for value."""
    return format_timedelta(timedelta(seconds=value * dict(_UNITS)[unit]), granularity=unit,
                            threshold=_NO_LIMIT, format="long", locale=_locale(lang))


def _relative(value: int, unit: Unit, lang: str, future: bool) -> str:
    """"через 21 минуту" / "21 minutes ago": the CLDR relative-time pattern for exactly this value."""
    secs = value * dict(_UNITS)[unit]
    return format_timedelta(timedelta(seconds=secs if future else -secs), granularity=unit, threshold=_NO_LIMIT,
                            add_direction=True, format="long", locale=_locale(lang))


@lru_cache(maxsize=16)
def _affixes(lang: str, future: bool) -> tuple[str, str]:
    """The words CLDR puts around a relative duration ("in "/"", ""/" ago", "vor "/"", ""/" назад"):
    the common start and end of two different units' relative forms."""
    a, b = _relative(1, "day", lang, future), _relative(3, "hour", lang, future)
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    m = 0
    while m < min(len(a), len(b)) - n and a[-1 - m] == b[-1 - m]:
        m += 1
    prefix, suffix = a[:n], a[len(a) - m:] if m else ""
    # A prefix must end at a word boundary before the number ("через "), a suffix start at one.
    prefix = prefix if not prefix or prefix.endswith(" ") else prefix[: prefix.rfind(" ") + 1]
    suffix = suffix if not suffix or suffix.startswith(" ") else suffix[suffix.find(" "):] if " " in suffix else ""
    return prefix, suffix


def duration(seconds: float, locale: str | None = DEFAULT) -> str:
    """"7 hours, 59 minutes" / "7 часов 59 минут": a duration in the nominative."""
    lang = _lang(locale)
    return format_list([_plain(v, u, lang) for v, u in _parts(seconds)], style="unit", locale=_locale(lang))


def relative(seconds: float, locale: str | None = DEFAULT) -> str:
    """"in 7 hours, 59 minutes" (seconds > 0) / "2 часа 21 минуту назад" (seconds < 0): every unit in
    the case its CLDR relative pattern gives, the direction words once. Under a second: "now"."""
    lang = _lang(locale)
    future = seconds > 0
    parts = _parts(seconds)
    if parts == [(0, "second")]:
        return str(_locale(lang)._data["date_fields"]["second"]["relative"][0])
    prefix, suffix = _affixes(lang, future)
    cores = []
    for value, unit in parts:
        rel = _relative(value, unit, lang, future)
        core = rel[len(prefix):] if prefix and rel.startswith(prefix) else rel
        core = core[: len(core) - len(suffix)] if suffix and core.endswith(suffix) else core
        cores.append(core)
    return prefix + format_list(cores, style="unit", locale=_locale(lang)) + suffix


def _moment(kind: str, ts: datetime, now: datetime, lang: str) -> str:
    ts, now = _utc(ts), _utc(now)
    loc = _locale(lang)
    frames = _FRAMES[lang]
    time = format_time(ts, "HH:mm", tzinfo=UTC, locale=loc) + " UTC"
    offset = (ts.date() - now.date()).days
    if offset in (-1, 0, 1):
        day = str(loc._data["date_fields"]["day"]["relative"][offset])
        return frames[kind + "_day"].format(time=time, day=day)
    return frames[kind + "_date"].format(time=time, date=format_date(ts.date(), "medium", locale=loc))


def _left_or_ago(ahead: str, past: str, when: datetime, now: datetime, locale: str | None) -> str:
    """The moment in the `ahead` frame with the time left, or once past in the `past` frame with how long ago."""
    lang = _lang(locale)
    left = _delta(when, now)
    if left > 0:
        return _moment(ahead, when, now, lang) + ", " + _FRAMES[lang]["left"].format(duration(left, lang))
    return _moment(past, when, now, lang) + ", " + relative(left, lang)


# -- what callers use ------------------------------------------------------------------------------

def describe_until(when: datetime, now: datetime, locale: str | None = DEFAULT) -> str:
    """End of something that holds until then (a bypass): "until 02:59 UTC tomorrow, 7 hours,
    59 minutes left"; once past: "ended today at 02:59 UTC, 3 hours ago"."""
    return _left_or_ago("until", "ended", when, now, locale)


def describe_deadline(when: datetime, now: datetime, locale: str | None = DEFAULT) -> str:
    """A deadline to meet (enrolment grace): "by 02:59 UTC tomorrow, 7 hours, 59 minutes left";
    once past: "overdue since yesterday at 02:59 UTC, 1 day, 3 hours ago"."""
    return _left_or_ago("by", "overdue", when, now, locale)


def describe_since(when: datetime, now: datetime, locale: str | None = DEFAULT) -> str:
    """When something happened: "today 14:05 UTC, 2 hours, 5 minutes ago" (a time ahead of the clock,
    e.g. another machine's, reads "in 3 minutes" rather than a negative age)."""
    lang = _lang(locale)
    return _moment("at", when, now, lang) + ", " + relative(_delta(when, now), lang)


def describe_at(when: datetime, now: datetime, locale: str | None = DEFAULT) -> str:
    """Just the moment: "today 14:05 UTC", "Dec 3, 2026, 14:05 UTC" (tables with many rows)."""
    return _moment("at", when, now, _lang(locale))


def describe_on(when: datetime, now: datetime, locale: str | None = DEFAULT) -> str:
    """The moment inside a sentence ("... was changed today at 14:05 UTC", "... on Dec 3, 2026 at
    14:05 UTC"): for messages read later (e-mails), so no "ago"."""
    return _moment("on", when, now, _lang(locale))


def parse(value: Any) -> datetime | None:
    """An ISO-8601 text (records, audit lines) or datetime as an aware UTC datetime; None if neither."""
    if isinstance(value, datetime):
        return _utc(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return _utc(ts)


_DESCRIBE = {"until": describe_until, "deadline": describe_deadline, "since": describe_since, "at": describe_at,
             "on": describe_on}


def friendly(value: Any, now: datetime, locale: str | None = DEFAULT, kind: str = "until") -> str:
    """describe_<kind> of an ISO text or datetime; anything unreadable is shown as it is (never a
    crash on a page because one record has an odd value), None/"" as "?"."""
    ts = parse(value)
    if ts is None:
        return "?" if value in (None, "") else str(value)
    return _DESCRIBE[kind](ts, now, locale)


_ISO_IN_TEXT = re.compile(r"(\buntil )?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))")


def replace_iso(text: str, now: datetime, locale: str | None = DEFAULT) -> str:
    """Human wording for the ISO times inside a message made for JSON and people alike (the service's
    "set the bypass marker on eve until 2026-12-02T02:59:00Z"): "until <ISO>" becomes describe_until,
    any other ISO time describe_since. For printing only; the JSON keeps the original text."""
    def one(m: re.Match[str]) -> str:
        ts = parse(m.group(2))
        if ts is None:
            return m.group(0)
        return describe_until(ts, now, locale) if m.group(1) else describe_since(ts, now, locale)

    return _ISO_IN_TEXT.sub(one, text)
