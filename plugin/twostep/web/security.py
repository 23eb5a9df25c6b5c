"""The signed-in user's own security page. Reads and changes only that user's account (the id
from their own sign-in), with the app's credentials; new devices and new backup codes go through
Keycloak's own application-initiated actions, so no secret passes through this app."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from .. import backup_codes, bypass, devices
from ..actor import self_service
from ..audit import sink_for
from ..enforcement import grace_deadline
from ..errors import InvalidInput, TwostepError
from ..keycloak_adapter import JSON, KeycloakClient
from ..policy import utc_iso
from . import i18n
from .auth import login_required, start_kc_action, state

bp = Blueprint("security", __name__)
_ = i18n.gettext


def _kc() -> KeycloakClient:
    kc: KeycloakClient = state().service.get()
    return kc


def _me() -> str:
    return str(session["user"]["id"])


def _required(kc: KeycloakClient, user: JSON) -> tuple[bool, str | None]:
    """(a second factor is required of this user, by when if not enrolled yet)."""
    try:
        policy = backup_codes.realm_policy(kc)
    except InvalidInput:
        return False, None
    if not backup_codes.in_scope(kc, user, policy):
        return False, None
    deadline = None if user.get("totp") else utc_iso(grace_deadline(user, policy))
    return True, deadline


def _me_now() -> tuple[KeycloakClient, JSON, bool, str | None]:
    """The signed-in user as Keycloak has them now; whether (and by when) a second factor is required."""
    kc = _kc()
    user = kc.get_user(_me())
    required, deadline = _required(kc, user)
    return kc, user, required, deadline


@bp.get("/security")
@login_required
def page() -> Any:
    kc, user, required, deadline = _me_now()
    return render_template(
        "security.html", user=user, devices=devices.list_devices(kc, user["id"]),
        codes=backup_codes.status(kc, user), bypass=bypass.show_user(kc, user, state().clock()),
        required=required, deadline=deadline, low=backup_codes.LOW_WARNING,
        pending=list(user.get("requiredActions") or []))


@bp.post("/security/change-device")
@login_required
def change_device() -> Any:
    plan = devices.change_device_plan(_kc(), _me())
    return start_kc_action("CONFIGURE_TOTP", {"user_id": _me(), "old_ids": list(plan.old_ids)})


@bp.post("/security/new-codes")
@login_required
def new_codes() -> Any:
    return start_kc_action("CONFIGURE_RECOVERY_AUTHN_CODES", {"user_id": _me()})


@bp.post("/security/remove-device")
@login_required
def remove_device() -> Any:
    kc, user, required, _deadline = _me_now()
    try:
        removed = devices.remove_device(kc, user["id"], request.form.get("credential_id", ""), required,
                                        actor=self_service(str(user.get("username") or ""), kc.realm),
                                        now=state().clock(),
                                        sink=sink_for(state().settings.audit_file))
        flash(_("Removed the device “%(label)s”.") % {"label": removed.label}, "ok")
    except TwostepError as exc:
        flash(i18n.nothing_changed(exc, _("Nothing was removed:"), times=False), "error")
    return redirect(url_for("security.page"))


def after_kc_action(pending: dict[str, Any], status: str | None) -> Any:
    """Back from Keycloak's own action page (callback, already signed in again)."""
    back = redirect(url_for("security.page"))
    if pending.get("user_id") != _me():
        flash(_("That action was started by another account: nothing was changed."), "error")
        return back
    action = pending.get("kc_action")
    if status != "success":
        flash(_("The action was cancelled or failed in Keycloak: nothing was changed."), "error")
        return back
    if action == "CONFIGURE_RECOVERY_AUTHN_CODES":
        flash(_("New backup codes were made; the old ones no longer work."), "ok")
        return back
    kc = _kc()
    plan = devices.DeviceChangePlan(tuple(pending.get("old_ids") or ()))
    new_id = devices.new_device_id(kc, _me(), plan)
    if new_id is None:
        flash(_("No new device was added, so your old device was kept."), "error")
        return back
    try:
        removed = devices.finish_device_change(kc, _me(), new_id, now=state().clock(),
                                               sink=sink_for(state().settings.audit_file))
    except TwostepError as exc:
        flash(i18n.nothing_changed(exc, _("Your new device was added but the old one was kept:"), times=False),
              "error")
        return back
    flash(i18n.ngettext("Your new device is set up; removed %(num)s old device.",
                        "Your new device is set up; removed %(num)s old devices.", len(removed))
          % {"num": len(removed)}, "ok")
    return back
