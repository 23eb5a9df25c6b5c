"""Languages in a test realm: internationalization on (so Keycloak keeps a user's `locale`
attribute and maps it to the `locale` claim of the `profile` scope), and a user's own language."""

from __future__ import annotations

from typing import Any


def enable_locales(admin: Any, realm: str, default: str = "en") -> None:
    admin.put(f"/{realm}", {"internationalizationEnabled": True, "supportedLocales": ["en", "de", "ru"],
                            "defaultLocale": default})
    rep = admin.get(f"/{realm}")
    assert rep["internationalizationEnabled"] is True and rep["defaultLocale"] == default, rep.get("defaultLocale")


def set_user_locale(admin: Any, realm: str, user_id: str, locale: str) -> None:
    rep = admin.get(f"/{realm}/users/{user_id}")
    rep["attributes"] = {**(rep.get("attributes") or {}), "locale": [locale]}
    admin.put(f"/{realm}/users/{user_id}", rep)
    stored = (admin.get(f"/{realm}/users/{user_id}").get("attributes") or {}).get("locale")
    assert stored == [locale], f"Keycloak dropped the locale attribute: {stored!r}"
