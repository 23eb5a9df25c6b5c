"""Admin pages for help requests ("I lost my phone"): the queue at /admin/help with the two answers,
and the overview's card. Like every admin page, Keycloak calls use the signed-in admin's own token
(g.kc): Keycloak's permissions decide and its admin events name the admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, url_for
from markupsafe import Markup

from .. import backup_codes, bypass, devices, help_requests, recovery_codes
from ..actor import is_self
from ..bypass_kinds import grant_default
from ..durations import format_duration, parse_duration
from ..errors import Forbidden, TwostepError
from ..keycloak_adapter import JSON, KeycloakClient
from ..records import realm_context
from . import i18n
from .acting import FormWords, actor, audit, done, may_not_list, posted_form
from .auth import admin_required, state
from .passes import kind_from_form, pass_page

ANSWERS = frozenset({"grant", "dismiss"})
ANSWER_WORDS = FormWords(
    i18n.N_("Unknown answer: nothing was changed."),
    i18n.N_("The form does not belong to this request: nothing was changed. Reload and try again."),
    i18n.N_("Tick “I confirm” to answer the request: nothing was changed."))
bp = Blueprint("help", __name__, url_prefix="/admin/help")
# The queue shows this many requests at most (oldest first); `twostep help list` shows all.
PAGE_LIMIT = 100


def _codes(user: JSON, creds: list[JSON]) -> dict[str, Any]:
    try:
        st = backup_codes.status(g.kc, user, creds)
    except recovery_codes.CredentialFormatError:
        return {"present": True, "unreadable": True}
    return {"present": st.present, "remaining": st.remaining, "total": st.total, "low": st.low}


def _visible(kc: KeycloakClient) -> list[tuple[help_requests.HelpRequest, JSON, list[JSON]]]:
    """The open requests of the users the signed-in admin may view, as the provider's extension answers
    with Keycloak's permissions (a delegated admin: the members of staff), in the queue's order."""
    out = []
    for uid in kc.help_queue_visible()[:PAGE_LIMIT]:
        user, creds = kc.get_user(uid), kc.user_credentials(uid)
        req = help_requests.read_request(user, creds) or help_requests.HelpRequest(
            uid, str(user.get("username") or ""), str(user.get("email") or ""), "", "", "",
            "in the help request index without a request")
        out.append((req, user, creds))
    return sorted(out, key=lambda rc: (bool(rc[0].damaged), rc[0].asked_at_raw, rc[0].username))


def _presets(max_s: int) -> list[str]:
    """The durations an answer offers: the bypass presets the policy allows."""
    return [p for p in bypass.PRESETS if parse_duration(p).total_seconds() <= max_s]


@bp.get("")
@admin_required
def queue() -> Any:
    kc: KeycloakClient = g.kc
    now = state().clock()
    try:
        items = help_requests.list_open(kc)
    except Forbidden:  # may not read the index group (a delegated admin): the requests Keycloak lets them see
        try:
            items = _visible(kc)
        except Forbidden:  # may not list users at all (no query-users): one clear line, not Keycloak's 403
            return may_not_list()
    policy, _store = realm_context(kc)
    items = help_requests.split_expired(items, now, policy.help_expiry_days)[0]  # expired: not shown
    rows = []
    for req, user, creds in items[:PAGE_LIMIT]:
        rows.append({"req": req.as_dict(now), "devices": devices.list_devices(kc, req.user_id, creds),
                     "codes": _codes(user, creds),
                     "is_self": is_self(actor(), kc.realm, user)})
    presets = _presets(policy.bypass_max_s)
    # The preset capped by the policy already read (help_requests.grant_duration reads it again).
    default = min(help_requests.DEFAULT_GRANT, timedelta(seconds=policy.bypass_max_s))
    chosen = format_duration(default.total_seconds())
    return render_template("admin_help.html", rows=rows, total=len(items), presets=presets,
                           kinds=policy.bypass_kinds if policy.provider_mode else ("password",),
                           kind_default=grant_default(policy.bypass_default, policy.provider_mode),
                           default=chosen if chosen in presets else (presets[-1] if presets else ""),
                           max_human=format_duration(policy.bypass_max_s))


@bp.post("/<user_id>/answer")
@admin_required
def answer(user_id: str) -> Any:
    back = redirect(url_for("help.queue"))
    posted = posted_form(user_id, ANSWERS, ANSWER_WORDS)
    if posted is None:
        return back
    user, form = posted.user, posted.form
    name = user.get("username")
    try:
        if posted.action == "grant":
            if is_self(actor(), g.kc.realm, user):
                raise i18n.Refusal(i18n.gettext(
                    "you cannot answer your own help request with a bypass; ask another admin"))
            preset = form.get("preset", "")
            if preset not in bypass.PRESETS:
                raise i18n.Refusal(i18n.gettext("choose a duration: one of %(presets)s")
                                   % {"presets": ", ".join(bypass.PRESETS)})
            pass_use, password_only = kind_from_form(form)
            res = help_requests.grant(g.kc, state().clock, audit(), actor(), user_id, parse_duration(preset),
                                      pass_use=pass_use, password_only=password_only)
            if res.get("access_pass"):
                return pass_page(user, res, url_for("help.queue"))
        else:
            res = help_requests.dismiss(g.kc, state().clock, audit(), actor(), user_id, form.get("reason", ""))
        flash(Markup("{} {} {}.").format(done(name, res["changes"]), i18n.gettext("User notified:"),
                                         i18n.notify_outcome(i18n.humanize(str(res["notified"])))), "ok")
    except TwostepError as exc:
        flash(i18n.nothing_changed(exc, times=False), "error")
    return back
