"""Admin pages: overview, users, one user (with actions), audit. Every Keycloak call uses the
signed-in admin's own token (g.kc), so Keycloak's permissions decide and its admin events name them."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for

from .. import backup_codes, bypass, devices, recovery_codes
from ..audit import AuditSink, event, sink_for
from ..durations import parse_duration
from ..errors import InvalidInput, NotFound, TwostepError
from ..keycloak_adapter import JSON, KeycloakClient
from ..realm_status import realm_status
from . import i18n
from .app import admin_required, ext

bp = Blueprint("admin", __name__, url_prefix="/admin")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACTIONS = {"grant", "extend", "revoke", "reset_device", "generate_codes", "end_sessions"}
OVERVIEW_COUNT_LIMIT = 500
AUDIT_MAX_LINES = 500
AUDIT_MAX_BYTES = 4 * 1024 * 1024


def actor() -> bypass.Actor:
    me = session["user"]
    ids = tuple((ext()["realm"], str(v).lower()) for v in (me.get("username"), me.get("email")) if v)
    return bypass.Actor(f"{me.get('username')}@{ext()['realm']} (web)", False, ids)


def audit() -> AuditSink:
    return sink_for(ext()["settings"].audit_file)


def end_sessions(kc: KeycloakClient, user: JSON, actor_name: str, sink: AuditSink, reason: str) -> int:
    """Thin wrapper (no service function exists): end all of a user's sessions, audited."""
    count = len(kc.user_sessions(user["id"]))
    kc.logout_user(user["id"])
    sink.write(event("sessions.end", realm=kc.realm, actor=actor_name, now=ext()["clock"](),
                     user_id=user["id"], username=user.get("username"), sessions_ended=count, reason=reason))
    return count


@bp.get("")
@admin_required
def overview() -> Any:
    kc: KeycloakClient = g.kc
    try:
        report = realm_status(kc, ext()["clock"](), count_limit=OVERVIEW_COUNT_LIMIT)
    except TwostepError as exc:
        return render_template("admin_overview.html", report=None, error=str(exc),
                               low_warning=backup_codes.LOW_WARNING)
    return render_template("admin_overview.html", report=report, error=None, low_warning=backup_codes.LOW_WARNING)


def _page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        return 1


@bp.get("/users")
@admin_required
def users() -> Any:
    kc: KeycloakClient = g.kc
    q = request.args.get("q", "").strip()[:100]
    page = _page_arg()
    size = ext()["web"].page_size
    # One list call per page: full representations carry totp, requiredActions and attributes;
    # one extra row tells whether a next page exists (no count call). Then one credentials call per
    # row shown (backup codes left): 1 + rows calls per page.
    params: dict[str, Any] = {"first": (page - 1) * size, "max": size + 1, "briefRepresentation": "false"}
    if q:
        params["search"] = q
    found = kc.find_users(**params)
    now = ext()["clock"]()
    policy, store = bypass.realm_context(kc)
    rows = []
    for u in found[:size]:
        creds = kc.user_credentials(u["id"])  # one read per row feeds the codes cell and the bypass record
        rec = store.read(kc, u, creds)
        rows.append({"id": u["id"], "username": u.get("username"), "email": u.get("email"),
                     "name": " ".join(x for x in (u.get("firstName"), u.get("lastName")) if x),
                     "otp": bool(u.get("totp")), "bypass": rec.as_dict(now, policy.bypass_max_s),
                     "pending": list(u.get("requiredActions") or []), "codes": _codes_cell(creds)})
    return render_template("admin_users.html", rows=rows, q=q, page=page, has_next=len(found) > size)


def _codes_cell(creds: list[JSON]) -> dict[str, Any]:
    """Backup codes left for the users list: present, remaining, total (None: unknown), low."""
    stored = backup_codes.codes_credentials(creds)
    if not stored:
        return {"present": False}
    try:
        info = recovery_codes.parse_credential(stored[0])
    except recovery_codes.CredentialFormatError:
        return {"present": True, "unreadable": True}
    return {"present": True, "remaining": info.remaining, "total": info.total,
            "low": info.remaining <= backup_codes.LOW_WARNING}


def _load_user(user_id: str) -> JSON:
    if not UUID.match(user_id):
        abort(404, f"No user with id {user_id!r} in realm {ext()['realm']!r}.")
    try:
        return g.kc.get_user(user_id)
    except NotFound:
        abort(404, f"No user with id {user_id!r} in realm {ext()['realm']!r}.")


def _user_view(user: JSON) -> dict[str, Any]:
    kc: KeycloakClient = g.kc
    now = ext()["clock"]()
    me = session["user"]
    creds = kc.user_credentials(user["id"])  # one read for devices, codes and (provider mode) the bypass
    return {
        "user": user, "devices": devices.list_devices(kc, user["id"], creds),
        "codes": backup_codes.status(kc, user, creds), "bypass": bypass.show_user(kc, user, now, creds),
        "sessions": len(kc.user_sessions(user["id"])), "presets": bypass.PRESETS,
        "is_self": bypass.is_self(actor(), kc.realm, user) or user["id"] == me.get("id"),
    }


@bp.get("/users/<user_id>")
@admin_required
def user(user_id: str) -> Any:
    return render_template("admin_user.html", **_user_view(_load_user(user_id)))


def _duration(form: Any) -> timedelta:
    preset = form.get("preset", "")
    if preset == "custom":
        return parse_duration(form.get("custom", ""))
    if preset not in bypass.PRESETS:
        raise InvalidInput("choose a duration: one of " + ", ".join(bypass.PRESETS) + " or custom")
    return parse_duration(preset)


@bp.post("/users/<user_id>/action")
@admin_required
def action(user_id: str) -> Any:
    kc: KeycloakClient = g.kc
    user = _load_user(user_id)
    form = request.form
    act = form.get("action", "")
    back = redirect(url_for("admin.user", user_id=user_id))
    if act not in ACTIONS:
        flash("Unknown action: nothing was changed.", "error")
        return back
    if form.get("user_id") != user_id:
        flash("The form does not belong to this user's page: nothing was changed. Reload and try again.", "error")
        return back
    if form.get("confirm") != "yes":
        flash("Tick “I confirm” to carry out the action: nothing was changed.", "error")
        return back
    reason = form.get("reason", "").strip()[:500]
    who = actor()
    sink = audit()
    name = user.get("username")
    try:
        if act in ("grant", "extend"):
            if bypass.is_self(who, kc.realm, user) or user_id == session["user"].get("id"):
                raise InvalidInput("you cannot bypass two-step authentication for yourself; ask another admin")
            req = bypass.GrantRequest(who=user_id, reason=reason, duration=_duration(form),
                                      reset_device=form.get("reset_device") == "yes", extend=act == "extend")
            res = bypass.grant(kc, ext()["clock"], sink, who, req)
            flash(i18n.humanize(f"Done for {name}: " + "; ".join(res["changes"]) + "."), "ok")
        elif act == "revoke":
            res = bypass.revoke(kc, ext()["clock"], sink, who, user_id, reason or "revoked on the admin page")
            flash(i18n.humanize(f"Done for {name}: " + "; ".join(res["changes"]) + "."), "ok")
        elif act == "reset_device":
            rr = devices.reset_otp(kc, user, actor=who.name, now=ext()["clock"](), sink=sink, reason=reason or None)
            flash(f"Reset {name}'s device: removed {len(rr.removed)} device(s), ended {rr.sessions_ended} "
                  "session(s); a new device is asked for at next sign-in.", "ok")
        elif act == "end_sessions":
            n = end_sessions(kc, user, who.name, sink, reason)
            flash(f"Ended {n} session(s) of {name}.", "ok")
        else:  # generate_codes: shown once, in this response only
            backup_codes.check_eligible(kc, user, kc.user_credentials(user_id))
            codes, notified = backup_codes.generate(kc, user, count=backup_codes.DEFAULT_COUNT, actor=who.name,
                                                    now=ext()["clock"](), sink=sink, reason=reason or None)
            return render_template("codes_once.html", user=user, codes=codes, notified=notified)
    except TwostepError as exc:
        flash(i18n.humanize(f"Nothing was changed: {exc}"), "error")
    return back


@bp.get("/audit")
@admin_required
def audit_page() -> Any:
    path = ext()["settings"].audit_file
    who = request.args.get("user", "").strip()[:100]
    events: list[dict[str, Any]] = []
    note = None
    if not path or path == "-":
        note = "No audit file is configured (settings audit_file / TWOSTEP_AUDIT_FILE): events go to the log."
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
            lines, note = [], f"The audit file cannot be read: {exc.strerror}"
        for line in reversed(lines):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if not isinstance(e, dict) or e.get("realm") not in (None, ext()["realm"]):
                continue
            if who and who.lower() not in (str(e.get("username") or "").lower(), str(e.get("user_id") or "")):
                continue
            events.append(e)
            if len(events) >= AUDIT_MAX_LINES:
                break
    return render_template("admin_audit.html", events=events, who=who, note=note)
