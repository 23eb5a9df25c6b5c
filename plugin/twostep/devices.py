"""OTP devices: list, admin reset (lost phone), and the user's own device change (changed phone).

A device change never leaves the user without a device: the new one is enrolled first through
Keycloak's own application-initiated action (`kc_action=CONFIGURE_TOTP`), and only once it exists
are the old ones removed (`finish_device_change`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from . import audit
from .actor import self_service
from .audit import AuditSink
from .backup_codes import keep_otp_first, otp_credentials
from .enforcement import CONFIGURE_TOTP, require_totp
from .errors import Conflict, InvalidInput, NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .notify import EMAIL, Notifier
from .policy import utc_iso
from .records import STORE_CREDENTIAL_NAME, store_for


@dataclass(frozen=True)
class Device:
    id: str
    label: str
    created: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _device(cred: JSON) -> Device:
    created = cred.get("createdDate")
    when = utc_iso(datetime.fromtimestamp(int(created) / 1000).astimezone()) if created else None
    return Device(str(cred["id"]), str(cred.get("userLabel") or "(no label)"), when)


def list_devices(kc: KeycloakClient, user_id: str, credentials: list[JSON] | None = None) -> list[Device]:
    """The user's OTP devices in credential order: id, label, created. Never the secret
    (the admin API strips secretData, and we only read these three fields)."""
    creds = kc.user_credentials(user_id) if credentials is None else credentials
    return [_device(c) for c in otp_credentials(creds)]


@dataclass(frozen=True)
class ResetResult:
    removed: list[Device]
    required_action_added: bool
    sessions_ended: int
    notified: str
    disabled: bool = False  # provider mode: the devices are disabled (restorable 30 days), not deleted


def reset_otp(kc: KeycloakClient, user: JSON, *, actor: str, now: datetime, sink: AuditSink,
              reason: str | None = None, dry_run: bool = False, notify: bool = True,
              notifier: Notifier = EMAIL) -> ResetResult:
    """Lost phone: remove every OTP device, require CONFIGURE_TOTP at next login, end all sessions.

    Provider mode disables the devices instead of deleting them (docs/formats.md, "Disabled devices"):
    `restore_otp` brings them back until the user enrolls a new one or 30 days pass. Fallback mode
    (no JAR) has nowhere safe to keep a secret aside and deletes them."""
    uid = user["id"]
    devices = list_devices(kc, uid)
    sessions = kc.user_sessions(uid)
    if dry_run:
        needs_action = CONFIGURE_TOTP not in (user.get("requiredActions") or [])
        return ResetResult(devices, needs_action, len(sessions), "not sent (dry run)")
    provider = store_for(kc).name == STORE_CREDENTIAL_NAME
    if provider:
        # Provider mode: one transaction in Keycloak (the provider's admin extension), after its own
        # permission check for this user: the requirement, the devices and the sessions together.
        done = kc.otp_reset(uid, {"by": actor, "reason": reason})
        added = bool(done.get("required_action_added"))
        sessions_ended = int(done.get("sessions_ended") or 0)
    else:
        # The new-device requirement goes first: if Keycloak refuses it (a federation with import off
        # answers 'The user is read-only'), no device has been removed yet and the user is still asked
        # for a code. The other order would leave a user with neither, who signs in with a password.
        added = require_totp(kc, uid)
        for d in devices:
            kc.delete_credential(uid, d.id)
        kc.logout_user(uid)
        sessions_ended = len(sessions)
    sink.write(audit.event("otp.reset", realm=kc.realm, actor=actor, now=now, user_id=uid,
                           username=user.get("username"), reason=reason, devices_removed=len(devices),
                           sessions_ended=sessions_ended))
    outcome = "not requested"
    if notify:
        outcome = notifier.notify(kc, user, "otp.reset", {"reason": reason}, sink, actor, now)
    return ResetResult(devices, added, sessions_ended, outcome, disabled=provider)


DISABLED_TYPE = "twostep-otp-disabled"  # docs/formats.md, "Disabled devices"


def disabled_count(credentials: list[JSON]) -> int:
    """How many disabled (restorable) devices the user has, from their credential list."""
    return sum(1 for c in credentials if c.get("type") == DISABLED_TYPE)


@dataclass(frozen=True)
class RestoreResult:
    restored: int
    purged: int


def restore_otp(kc: KeycloakClient, user: JSON, *, actor: str, now: datetime, sink: AuditSink,
                reason: str | None = None) -> RestoreResult:
    """A found phone: the devices a reset or a help answer disabled come back (the provider's extension,
    one transaction); a Conflict when there is none (never disabled, purged, or a new device enrolled)."""
    if store_for(kc).name != STORE_CREDENTIAL_NAME:
        raise Conflict("restoring a device needs the twostep provider (provider mode): without it a reset "
                       "deletes the device, and there is nothing to restore")
    uid = user["id"]
    done = kc.otp_restore(uid, {"by": actor, "reason": reason})
    result = RestoreResult(int(done.get("devices_restored") or 0), int(done.get("devices_purged") or 0))
    sink.write(audit.event("otp.restore", realm=kc.realm, actor=actor, now=now, user_id=uid,
                           username=user.get("username"), reason=reason, devices_restored=result.restored))
    return result


# -- changed phone (self-service) ------------------------------------------------------------


@dataclass(frozen=True)
class DeviceChangePlan:
    """What the device-change page remembers while Keycloak's CONFIGURE_TOTP action runs: `old_ids`."""

    old_ids: tuple[str, ...]


def change_device_plan(kc: KeycloakClient, user_id: str) -> DeviceChangePlan:
    return DeviceChangePlan(tuple(d.id for d in list_devices(kc, user_id)))


def new_device_id(kc: KeycloakClient, user_id: str, plan: DeviceChangePlan) -> str | None:
    """The device enrolled since `plan` was made (the newest one if several), or None."""
    fresh = [d for d in list_devices(kc, user_id) if d.id not in plan.old_ids]
    if not fresh:
        return None
    return max(fresh, key=lambda d: d.created or "").id


def finish_device_change(kc: KeycloakClient, user_id: str, new_credential_id: str, *,
                         actor: str | None = None, now: datetime | None = None, sink: AuditSink | None = None,
                         notify: bool = False, notifier: Notifier = EMAIL) -> list[Device]:
    """Keep only `new_credential_id` among the user's OTP devices; returns the removed ones.

    Refuses unless the new device exists as an OTP credential of this user, so the user always
    keeps at least one device. The new device is put first in credential order.
    """
    devices = list_devices(kc, user_id)
    if not any(d.id == new_credential_id for d in devices):
        raise NotFound("the new device is not (or no longer) registered; enroll it first "
                       "(nothing was removed)")
    keep_otp_first(kc, user_id)
    kc.move_credential_first(user_id, new_credential_id)
    removed: list[Device] = []
    for d in devices:
        if d.id != new_credential_id:
            kc.delete_credential(user_id, d.id)
            removed.append(d)
    if sink is not None and now is not None:
        user = kc.get_user(user_id)
        who = actor or self_service(str(user.get("username") or ""), kc.realm)
        new_label = next(d.label for d in devices if d.id == new_credential_id)
        sink.write(audit.event("otp.device_change", realm=kc.realm, actor=who, now=now, user_id=user_id,
                               username=user.get("username"), devices_removed=len(removed), label=new_label))
        if notify:
            notifier.notify(kc, user, "device.change",
                            {"label": new_label, "removed": ", ".join(d.label for d in removed) or None},
                            sink, who, now)
    return removed


def remove_device(kc: KeycloakClient, user_id: str, cred_id: str, required: bool, *, actor: str | None = None,
                  now: datetime | None = None, sink: AuditSink | None = None) -> Device:
    """Remove one OTP device explicitly; refuses the last one when a second factor is required."""
    if not cred_id:
        raise InvalidInput("no device given")
    devices = list_devices(kc, user_id)
    target = next((d for d in devices if d.id == cred_id), None)
    if target is None:
        raise NotFound("no such device for this user")
    if required and len(devices) == 1:
        raise Conflict("this is your only device and two-step sign-in is required: "
                       "add the new device first, then remove the old one")
    kc.delete_credential(user_id, cred_id)
    if sink is not None and now is not None:
        user = kc.get_user(user_id)
        who = actor or self_service(str(user.get("username") or ""), kc.realm)
        sink.write(audit.event("otp.device_remove", realm=kc.realm, actor=who, now=now,
                               user_id=user_id, username=user.get("username"), label=target.label))
    return target


def end_sessions(kc: KeycloakClient, user: JSON, *, actor: str, now: datetime, sink: AuditSink, reason: str) -> int:
    """End all of a user's sessions (the admin page's "end sessions"), audited with how many there were."""
    count = len(kc.user_sessions(user["id"]))
    kc.logout_user(user["id"])
    sink.write(audit.event("sessions.end", realm=kc.realm, actor=actor, now=now, user_id=user["id"],
                           username=user.get("username"), sessions_ended=count, reason=reason))
    return count
