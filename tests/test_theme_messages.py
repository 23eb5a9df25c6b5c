"""The twostep login theme's files on their own: message files, templates, theme.properties.

Keycloak's own templates and messages are read from the real 26.x distribution (the zip that
deploy/local/keycloak.sh fetches) to check that every name we override or use really exists there.
"""

from __future__ import annotations

import re
import zipfile
from functools import cache
from pathlib import Path

import pytest

from tests.theme_pages import LOCALES, THEME_DIR, keycloak_themes_jar, load_messages, parse_properties

PREFIX = "twostep"
# Keycloak's own keys we override so that every page speaks of "backup codes" and "authenticator
# app" the same way; everything else we add starts with PREFIX.
OVERRIDDEN_KEYCLOAK_KEYS = frozenset({
    "otp-display-name",
    "otp-help-text",
    "recovery-authn-codes-display-name",
    "recovery-authn-codes-help-text",
    "auth-recovery-code-header",
    "auth-recovery-code-prompt",
    "recovery-code-config-header",
    "recovery-code-config-warning-title",
    "recovery-code-config-warning-message",
    "recovery-codes-download-file-header",
    "recovery-codes-download-file-description",
})
TEMPLATES = sorted(THEME_DIR.glob("*.ftl"))
# msg("key") or msg("key", args): literal keys only (msg(app), msg("x." + y) are Keycloak's).
MSG_CALL = re.compile(r"""msg\(\s*["']([^"'$]+)["']\s*[,)]""")
PLACEHOLDER = re.compile(r"\{(\d+)\}")


@cache
def keycloak_jar() -> zipfile.ZipFile:
    return keycloak_themes_jar()


@cache
def keycloak_messages_en() -> dict[str, str]:
    text = keycloak_jar().read("theme/base/login/messages/messages_en.properties").decode("utf-8")
    return parse_properties(text)


def test_every_locale_has_the_same_keys() -> None:
    keys = {loc: set(load_messages(loc)) for loc in LOCALES}
    for loc in LOCALES[1:]:
        missing, extra = sorted(keys["en"] - keys[loc]), sorted(keys[loc] - keys["en"])
        assert not missing and not extra, f"messages_{loc}: missing {missing}, extra {extra}"


@pytest.mark.parametrize("locale", LOCALES)
def test_message_files_are_utf8_without_duplicates(locale: str) -> None:
    raw = (THEME_DIR / "messages" / f"messages_{locale}.properties").read_bytes()
    text = raw.decode("utf-8")  # Keycloak 26 reads messages files as UTF-8
    assert "\\u" not in text, "write the characters themselves, not \\u escapes"
    keys = [line.split("=", 1)[0].strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "!"))]
    assert all("=" in line for line in text.splitlines()
               if line.strip() and not line.lstrip().startswith(("#", "!")))
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"duplicate keys: {duplicates}"


def test_our_keys_are_prefixed_and_overrides_are_real_keycloak_keys() -> None:
    keys = set(load_messages("en"))
    unprefixed = {k for k in keys if not k.startswith(PREFIX)}
    stray = sorted(unprefixed - OVERRIDDEN_KEYCLOAK_KEYS)
    assert not stray, f"not prefixed {PREFIX!r}: {stray}"
    unknown = sorted(OVERRIDDEN_KEYCLOAK_KEYS - set(keycloak_messages_en()))
    assert not unknown, f"not Keycloak message keys (typo or renamed upstream?): {unknown}"
    assert OVERRIDDEN_KEYCLOAK_KEYS <= keys


@pytest.mark.parametrize("locale", LOCALES)
def test_messages_are_valid_message_format(locale: str) -> None:
    """Keycloak formats every message with java.text.MessageFormat: a lone ' swallows text."""
    en = load_messages("en")
    for key, value in load_messages(locale).items():
        assert value, f"{key} is empty"
        assert "'" not in value.replace("''", ""), f"{key}: write an apostrophe as ''"
        assert value.count("{") == value.count("}"), f"{key}: unbalanced braces"
        assert set(PLACEHOLDER.findall(value)) == set(PLACEHOLDER.findall(en[key])), (
            f"{key}: placeholders differ from English")


@pytest.mark.parametrize("locale", ["de", "ru"])
def test_translations_are_translated(locale: str) -> None:
    en, other = load_messages("en"), load_messages(locale)
    same = sorted(k for k in en if en[k] == other[k] and k != "twostepCodesFileName")
    assert not same, f"messages_{locale} repeats the English text of {same}"
    if locale == "ru":
        cyrillic = re.compile("[\u0430-\u044f\u0451]", re.I)
        latin_only = sorted(k for k, v in other.items()
                            if k != "twostepCodesFileName" and not cyrillic.search(v))
        assert not latin_only, f"no Cyrillic in {latin_only}"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_every_key_used_in_a_template_exists(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    ours = set(load_messages("en"))
    keycloak = set(keycloak_messages_en())
    used = set(MSG_CALL.findall(text))
    missing = sorted(k for k in used if k not in ours and k not in keycloak)
    assert not missing, f"{template}: unknown message keys {missing}"


def test_templates_override_real_keycloak_v2_templates() -> None:
    parent = {n.rsplit("/", 1)[-1] for n in keycloak_jar().namelist()
              if n.startswith("theme/keycloak.v2/login/") and n.endswith(".ftl")}
    ours = {p.name for p in TEMPLATES}
    # Pages of our own authenticators are named twostep-*.ftl; every other file overrides a real one.
    overrides = {n for n in ours if not n.startswith("twostep-")}
    assert overrides <= parent, f"no such keycloak.v2 template: {sorted(overrides - parent)}"
    assert not (ours - overrides) & parent, "a twostep-*.ftl must not shadow a keycloak.v2 template"
    assert {"login-otp.ftl", "login-config-totp.ftl", "login-recovery-authn-code-input.ftl",
            "login-recovery-authn-code-config.ftl", "select-authenticator.ftl"} <= ours
    # Only what we need: never a copy of the parent's layout.
    assert "template.ftl" not in ours


def test_theme_properties_extend_keycloak_v2_and_resources_exist() -> None:
    props = parse_properties((THEME_DIR / "theme.properties").read_text(encoding="utf-8"))
    assert props["parent"] == "keycloak.v2"
    parent_props = parse_properties(
        keycloak_jar().read("theme/keycloak.v2/login/theme.properties").decode("utf-8"))
    for style in props["styles"].split():
        # Resources resolve in our theme first, then in the parent's.
        ours = THEME_DIR / "resources" / style
        assert ours.is_file() or style in parent_props["styles"].split(), style
    for script in props["scripts"].split():
        assert (THEME_DIR / "resources" / script).is_file(), script
    assert (THEME_DIR / "resources" / props["twostepLogo"]).is_file()
    css = (THEME_DIR / "resources" / "css" / "twostep.css").read_text(encoding="utf-8")
    for var in ("--twostep-brand-color", "--twostep-page-background", "--twostep-logo-url"):
        assert f"{var}:" in css


@pytest.mark.parametrize("locale", LOCALES)
def test_provider_jar_ships_the_help_request_texts_for_every_theme(locale: str) -> None:
    """The provider's theme-resources/messages (merged into every login theme) are exactly the
    help-request and access-pass lines of the twostep theme, so the two never drift apart."""
    jar_file = (THEME_DIR.parents[2] / "plugin" / "keycloak" / "src" / "main" / "resources" / "theme-resources"
                / "messages" / f"messages_{locale}.properties")
    shipped = parse_properties(jar_file.read_text(encoding="utf-8"))
    ours = {k: v for k, v in load_messages(locale).items()
            if k.startswith(("twostep-help-request-", "twostepHelp", "twostep-access-pass-", "twostepPass"))}
    assert shipped == ours and len(ours) >= 25
