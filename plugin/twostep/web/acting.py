"""What every admin page that changes a user shares: who acts (`actor`, with the signed-in admin's
own user id, so the services' "not on yourself" rule covers every page), where it is audited, the user
a form is about (`load_user`), the one guard every form passes (`form_refusal`), both at once for a
posted form (`posted_form`), the "Done for" line (`done`) and the page of an admin who may not list
users (`may_not_list`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, g, render_template, request, session
from markupsafe import Markup

from ..actor import Actor, web_actor
from ..audit import AuditSink, sink_for
from ..errors import NotFound
from ..keycloak_adapter import JSON
from . import i18n
from .auth import state

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def actor() -> Actor:
    me = session["user"]
    return web_actor(str(me.get("username") or ""), me.get("email"), state().realm, user_id=me.get("id"))


def audit() -> AuditSink:
    return sink_for(state().settings.audit_file)


def load_user(user_id: str) -> JSON:
    """The user a page or form is about, read with the signed-in admin's token: 404 for what is not a
    user id or not a user Keycloak shows this admin."""
    if not UUID.match(user_id):
        abort(404, _no_user(user_id))
    try:
        return dict(g.kc.get_user(user_id))
    except NotFound:
        abort(404, _no_user(user_id))


def may_not_list() -> tuple[str, int]:
    """The page of an admin Keycloak lets manage someone but not list users (`GET /users` needs
    query-users or a permission to view every user; a delegated admin under fine-grained admin
    permissions may have neither): one line saying what they may not do and whom to ask, HTTP 403."""
    _ = i18n.gettext
    return render_template("error.html", status=403, title=_("You may not list users"), message=_(
        "Your account may not list users in realm %(realm)s: ask a realm administrator for the role "
        "realm-management/query-users (or a fine-grained admin permission to view users).")
        % {"realm": state().realm}), 403


def _no_user(user_id: str) -> str:
    return i18n.gettext("No user with id %(id)r in realm %(realm)r.") % {"id": user_id, "realm": state().realm}


@dataclass(frozen=True)
class FormWords:
    """A page's own words for the three refusals (each page says "action" or "answer" in its terms):
    texts marked with i18n.N_, translated when a refusal is shown."""

    unknown: str
    other_user: str
    confirm: str


def form_refusal(form: Any, user_id: str, allowed: set[str] | frozenset[str], words: FormWords) -> str | None:
    """Why a posted form changes nothing, or None: an action the page does not offer, a form made for
    another user's page (a stale tab), or "I confirm" not ticked."""
    if form.get("action", "") not in allowed:
        return i18n.gettext(words.unknown)
    if form.get("user_id") != user_id:
        return i18n.gettext(words.other_user)
    if form.get("confirm") != "yes":
        return i18n.gettext(words.confirm)
    return None


@dataclass(frozen=True)
class Posted:
    """A posted form that passed the guard: the user it is about, the form, its action."""

    user: JSON
    form: Any
    action: str


def posted_form(user_id: str, allowed: set[str] | frozenset[str], words: FormWords) -> Posted | None:
    """The request's form about `user_id` (load_user: 404 for no such user); None, with the refusal
    flashed, when it changes nothing (form_refusal)."""
    user = load_user(user_id)
    form = request.form
    refusal = form_refusal(form, user_id, allowed, words)
    if refusal:
        flash(refusal, "error")
        return None
    return Posted(user, form, form.get("action", ""))


def done(name: object, changes: list[str]) -> Markup:
    """"Done for NAME: what changed." The changes are the service's (or the admin extension's) own
    lines, shown as they are (docs/web.md, "Languages")."""
    text = "; ".join(changes)
    return Markup("{} {}.").format(i18n.gettext("Done for %(name)s:") % {"name": name},
                                   i18n.untranslated(i18n.humanize(text)))
