"""Admin pages: overview, users, one user (with actions), audit. Every Keycloak call uses the
signed-in admin's own token (g.kc), so Keycloak's permissions decide and its admin events name them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from .. import backup_codes, bypass, devices, help_requests, pass_summary
from ..actor import is_self
from ..bypass_kinds import grant_default
from ..durations import parse_duration
from ..errors import Forbidden, NotFound, TwostepError
from ..keycloak_adapter import JSON, KeycloakClient
from ..policy import BROWSER_FLOW, RESET_FLOW, utc_iso
from ..realm_policy import policy_of
from ..realm_status import Check
from ..records import CredentialStore, realm_context
from . import i18n
from .acting import FormWords, actor, audit, done, load_user, may_not_list, posted_form
from .auth import admin_required, state
from .passes import kind_from_form, pass_page

bp = Blueprint("admin", __name__, url_prefix="/admin")
ACTIONS = {"grant", "extend", "revoke", "reset_device", "restore_device", "generate_codes", "end_sessions"}
ACTION_WORDS = FormWords(
    i18n.N_("Unknown action: nothing was changed."),
    i18n.N_("The form does not belong to this user's page: nothing was changed. Reload and try again."),
    i18n.N_("Tick “I confirm” to carry out the action: nothing was changed."))
AUDIT_MAX_LINES = 500
AUDIT_MAX_BYTES = 4 * 1024 * 1024


def _help_card(kc: KeycloakClient) -> dict[str, Any] | None:
    """The overview's first card: how many help requests are open, and who (the first few); None when
    unreadable. At most two calls (help_requests.open_summary), so the overview keeps a fixed cost."""
    try:
        count, more, names = help_requests.open_summary(kc)
    except TwostepError:
        return None
    return {"count": count, "more": more, "names": names}


@bp.get("")
@admin_required
def overview() -> Any:
    """Two Keycloak calls: the realm and the last sync pass's summary (pass_summary.load, one group
    search). The realm's settings give the checks shown here; the counts that need a scan of the
    users come from that summary, shown with their age,
    never from a scan per page view. Flows, federation and drift: `twostep status` (dozens of calls)."""
    kc: KeycloakClient = g.kc
    now = state().clock()
    help_card = _help_card(kc)
    try:
        realm = kc.get_realm()
    except TwostepError as exc:
        # Keycloak shows the realm to anyone holding a realm-management role; a delegated admin with a
        # fine-grained permission only holds none: one line saying whom to ask, not Keycloak's 403.
        error = i18n.gettext(
            "Your account may not read the settings of realm %(realm)s: ask a realm administrator for the role "
            "realm-management/query-users (or view-realm).") % {"realm": kc.realm} \
            if isinstance(exc, Forbidden) else str(exc)
        return render_template("admin_overview.html", error=error, low_warning=backup_codes.LOW_WARNING,
                               help=help_card)
    reading = pass_summary.load(kc, now)
    checks = overview_checks(kc.realm, realm, reading)
    summary = reading.summary
    return render_template(
        "admin_overview.html", error=None, reading=reading, summary=summary, checks=checks,
        ok=all(c.ok for c in checks), counts=summary.counts if summary else None,
        lists=(summary.lists or {}) if summary else {}, low_warning=backup_codes.LOW_WARNING, help=help_card,
        groups=(summary.groups or []) if summary else [], history=summary.history if summary else [],
        enforcement_groups=policy_of(realm).policy.enforcement.mode == "groups")


def overview_checks(realm_name: str, realm: JSON, reading: pass_summary.Reading) -> list[Check]:
    """What the realm's own representation and the last pass can vouch for (fail closed: no pass,
    an unreadable or an old summary is a failed check). In the reader's language (i18n.gettext)."""
    _ = i18n.gettext
    reading_policy = policy_of(realm)
    policy, intact = reading_policy.policy, reading_policy.intact
    setup_fix = f"twostep setup --realm {realm_name}"
    sync_fix = f"twostep sync --realm {realm_name}"
    enf = policy.enforcement
    who = {"all": _("everyone"), "none": _("nobody (opt-in)")}.get(
        enf.mode, _("groups %(names)s") % {"names": ", ".join(enf.groups)})
    checks = [Check(_("policy record"), intact,
                    _("%(who)s, grace period %(n)s day(s)") % {"who": who, "n": enf.grace_days} if intact else
                    _("missing or damaged: acting as 'everyone, no grace, 1 h bypass maximum'"), setup_fix)]
    s = reading.summary
    name = _("last sync pass")
    if reading.state == "none":
        checks.append(Check(name, False, _("no sync pass yet: counts are not known"), sync_fix))
    elif s is None:
        checks.append(Check(name, False, _("its summary (%(attr)s) cannot be read") % {"attr": pass_summary.ATTR},
                            sync_fix))
    elif not reading.fresh:
        checks.append(Check(name, False, i18n.humanize(utc_iso(s.at)) + ": "
                            + _("is twostep sync running?"), sync_fix))
    else:
        checks.append(Check(name, s.ok, _("no errors") if s.ok else
                            _("%(n)s error(s): see the sync log") % {"n": s.errors}, sync_fix))
    for key, alias in (("browserFlow", BROWSER_FLOW), ("resetCredentialsFlow", RESET_FLOW)):
        checks.append(Check(_("%(key)s binding") % {"key": key}, realm.get(key) == alias,
                            _("bound to %(flow)r") % {"flow": realm.get(key)}, setup_fix))
    otp_ok = realm.get("otpPolicyCodeReusable") is False and realm.get("otpPolicyType") in ("totp", "hotp")
    checks.append(Check(_("OTP policy"), otp_ok, _("%(type)s, code reuse %(reuse)s") % {
        "type": realm.get("otpPolicyType"), "reuse": _("on") if realm.get("otpPolicyCodeReusable") else _("off")},
        setup_fix))
    checks.append(Check(_("brute-force detection"), bool(realm.get("bruteForceProtected")),
                        _("on") if realm.get("bruteForceProtected") else _("off"), setup_fix))
    return checks


def _page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        return 1


@bp.get("/users")
@admin_required
def users() -> Any:
    """At most 3 Keycloak calls whatever the page size: the list (full representations carry totp,
    requiredActions and attributes, so the fallback store's records; one extra row tells whether a
    next page exists, no count call), the realm (the policy names the record store and the longest
    bypass) and, in provider mode, the page's bypass records from the provider's admin extension (the
    users the admin may view: a delegated admin's too). Backup codes left are on the user's page."""
    kc: KeycloakClient = g.kc
    q = request.args.get("q", "").strip()[:100]
    page = _page_arg()
    size = state().web.page_size
    params: dict[str, Any] = {"first": (page - 1) * size, "max": size + 1, "briefRepresentation": "false"}
    if q:
        params["search"] = q
    try:
        found = kc.find_users(**params)
    except Forbidden:  # e.g. a delegated admin without query-users: one clear line, not Keycloak's 403
        return may_not_list()
    now = state().clock()
    policy, store = realm_context(kc)
    shown = found[:size]
    records = _bypass_records(kc, [str(u["id"]) for u in shown]) if isinstance(store, CredentialStore) else None
    rows = []
    for u in shown:
        if records is None:  # fallback mode: the record is in the attributes the list carried
            cell = {**store.read(kc, u, []).as_dict(now, policy.bypass_max_s), "cell": "record"}
        elif u["id"] in records:
            cell = {**store.read(kc, u, records[u["id"]]).as_dict(now, policy.bypass_max_s), "cell": "record"}
        else:
            cell = {"cell": "unknown"}  # not answered (gone meanwhile, an older provider): never "none"
        rows.append({"id": u["id"], "username": u.get("username"), "email": u.get("email"),
                     "name": " ".join(x for x in (u.get("firstName"), u.get("lastName")) if x),
                     "otp": bool(u.get("totp")), "bypass": cell, "pending": list(u.get("requiredActions") or [])})
    return render_template("admin_users.html", rows=rows, q=q, page=page, has_next=len(found) > size)


def _bypass_records(kc: KeycloakClient, ids: list[str]) -> dict[str, list[JSON]]:
    """The page's bypass records, one extension call per 100 users (`bypass_records`): only the users
    the signed-in admin may view are answered. An extension that does not answer (an older provider
    JAR): no user is answered, so every row says "?"."""
    out: dict[str, list[JSON]] = {}
    try:
        for i in range(0, len(ids), BYPASS_RECORDS_PER_CALL):
            out.update(kc.bypass_records(ids[i:i + BYPASS_RECORDS_PER_CALL]))
    except (NotFound, Forbidden):
        return {}
    return out


BYPASS_RECORDS_PER_CALL = 100
"""Users one bypass_records call answers for (the extension's limit)."""


def _user_view(user: JSON) -> dict[str, Any]:
    """Three Keycloak calls: the user (already read), the realm (policy, record store) and the
    user's credentials (devices, codes and, in provider mode, the bypass record). The number of
    sessions is one more call: it has its own page (user_sessions)."""
    kc: KeycloakClient = g.kc
    now = state().clock()
    policy, store = realm_context(kc)
    creds = kc.user_credentials(user["id"])
    return {
        "user": user, "devices": devices.list_devices(kc, user["id"], creds),
        "codes": backup_codes.status(kc, user, creds),
        "bypass": store.read(kc, user, creds).as_dict(now, policy.bypass_max_s), "presets": bypass.PRESETS,
        "kinds": policy.bypass_kinds if store.name == "credential" else ("password",),
        "kind_default": grant_default(policy.bypass_default, store.name == "credential"),
        "is_self": is_self(actor(), kc.realm, user),
        "disabled_devices": devices.disabled_count(creds),
    }


@bp.get("/users/<user_id>")
@admin_required
def user(user_id: str) -> Any:
    return render_template("admin_user.html", **_user_view(load_user(user_id)))


@bp.get("/users/<user_id>/sessions")
@admin_required
def user_sessions(user_id: str) -> Any:
    user = load_user(user_id)
    return render_template("admin_sessions.html", user=user, sessions=g.kc.user_sessions(user_id))


def _duration(form: Any) -> timedelta:
    preset = form.get("preset", "")
    if preset == "custom":
        return parse_duration(form.get("custom", ""))
    if preset not in bypass.PRESETS:
        raise i18n.Refusal(i18n.gettext("choose a duration: one of %(presets)s or custom")
                           % {"presets": ", ".join(bypass.PRESETS)})
    return parse_duration(preset)


@bp.post("/users/<user_id>/action")
@admin_required
def action(user_id: str) -> Any:
    back = redirect(url_for("admin.user", user_id=user_id))
    posted = posted_form(user_id, ACTIONS, ACTION_WORDS)
    if posted is None:
        return back
    kc: KeycloakClient = g.kc
    user, form, act = posted.user, posted.form, posted.action
    reason = form.get("reason", "").strip()[:500]
    who = actor()
    sink = audit()
    name = user.get("username")
    try:
        if act in ("grant", "extend"):
            if is_self(who, kc.realm, user):
                raise i18n.Refusal(i18n.gettext(
                    "you cannot bypass two-step authentication for yourself; ask another admin"))
            pass_use, password_only = kind_from_form(form) if act == "grant" else (None, False)
            req = bypass.GrantRequest(who=user_id, reason=reason, duration=_duration(form),
                                      reset_device=form.get("reset_device") == "yes", extend=act == "extend",
                                      pass_use=pass_use, password_only=password_only)
            res = bypass.grant(kc, state().clock, sink, who, req)
            if res.get("access_pass"):
                return pass_page(user, res, url_for("admin.user", user_id=user_id))
            flash(done(name, res["changes"]), "ok")
        elif act == "revoke":
            res = bypass.revoke(kc, state().clock, sink, who, user_id, reason or "revoked on the admin page")
            flash(done(name, res["changes"]), "ok")
        elif act == "reset_device":
            rr = devices.reset_otp(kc, user, actor=who.name, now=state().clock(), sink=sink, reason=reason or None)
            removed = i18n.ngettext("removed %(num)s device", "removed %(num)s devices", len(rr.removed))
            ended = i18n.ngettext("ended %(num)s session", "ended %(num)s sessions", rr.sessions_ended)
            flash(i18n.gettext("Reset the device of %(name)s: %(removed)s, %(ended)s; a new device is asked "
                               "for at next sign-in.") % {
                "name": name, "removed": removed % {"num": len(rr.removed)},
                "ended": ended % {"num": rr.sessions_ended}}, "ok")
        elif act == "restore_device":
            back_n = devices.restore_otp(kc, user, actor=who.name, now=state().clock(), sink=sink,
                                         reason=reason or None).restored
            flash(i18n.ngettext("Restored %(num)s device of %(name)s: its codes work again.",
                                "Restored %(num)s devices of %(name)s: their codes work again.", back_n)
                  % {"num": back_n, "name": name}, "ok")
        elif act == "end_sessions":
            n = devices.end_sessions(kc, user, actor=who.name, now=state().clock(), sink=sink, reason=reason)
            flash(i18n.ngettext("Ended %(num)s session of %(name)s.", "Ended %(num)s sessions of %(name)s.", n)
                  % {"num": n, "name": name}, "ok")
        else:  # generate_codes: shown once, in this response only
            backup_codes.check_eligible(kc, user, kc.user_credentials(user_id))
            codes, notified = backup_codes.generate(kc, user, count=backup_codes.DEFAULT_COUNT, actor=who.name,
                                                    now=state().clock(), sink=sink, reason=reason or None)
            return render_template("codes_once.html", user=user, codes=codes, notified=notified)
    except TwostepError as exc:
        flash(i18n.nothing_changed(exc), "error")
    return back


@bp.get("/audit")
@admin_required
def audit_page() -> Any:
    path = state().settings.audit_file
    who = request.args.get("user", "").strip()[:100]
    events: list[dict[str, Any]] = []
    note = None
    if not path or path == "-":
        note = i18n.gettext("No audit file is configured (settings audit_file / TWOSTEP_AUDIT_FILE): "
                            "events go to the log.")
    else:
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(max(0, size - AUDIT_MAX_BYTES))
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            lines, note = [], i18n.gettext("The audit file cannot be read: %(why)s") % {"why": exc.strerror}
        for line in reversed(lines):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if not isinstance(e, dict) or e.get("realm") not in (None, state().realm):
                continue
            if who and who.lower() not in (str(e.get("username") or "").lower(), str(e.get("user_id") or "")):
                continue
            events.append(e)
            if len(events) >= AUDIT_MAX_LINES:
                break
    return render_template("admin_audit.html", events=events, who=who, note=note)
