"""The kind of a bypass on the admin pages (docs/web.md, "Access pass"): the choice in the grant and
help-answer forms (pass first, the realm's default preselected) and the page that shows a new pass
once. The extension enforces the realm's kinds; a refusal is its one line."""

from __future__ import annotations

from typing import Any

from flask import render_template

from . import i18n

CHOICES = {"pass-once": ("once", False), "pass-multi": ("multi", False), "password": (None, True)}


def kind_from_form(form: Any) -> tuple[str | None, bool]:
    """(pass use, password only) for bypass.GrantRequest / help_requests.grant; nothing chosen: the
    realm's default."""
    chosen = form.get("kind", "")
    if not chosen:
        return None, False
    if chosen not in CHOICES:
        raise i18n.Refusal(i18n.gettext("choose a kind of bypass: an access pass or the password alone"))
    return CHOICES[chosen]


def pass_page(user: Any, result: dict[str, Any], back: str) -> str:
    """The new access pass, shown in this response only (never flashed: a flash is stored in the cookie)."""
    return render_template("pass_once.html", user=user, access_pass=result["access_pass"],
                           kind=str(result.get("kind", "pass")), until=result.get("until"), back=back,
                           changes="; ".join(result.get("changes", [])))
