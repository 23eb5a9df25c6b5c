"""Arranging bypasses in-process, through the real service API, with a shifted clock.

The 5-minute minimum of a bypass is a rule of the service; tests never lower it. To get a bypass
that ends a few seconds from now, a test calls the service with a clock set (300 s - a few s) in the
past: the grant is validated exactly as the CLI would validate it, only "now" is earlier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from twostep import bypass
from twostep.actor import Actor
from twostep.audit import MemorySink
from twostep.clock import fixed_clock
from twostep.keycloak_adapter import KeycloakClient
from twostep.policy import utc_iso
from twostep.records import CredentialStore, realm_context
from twostep.settings import Settings
from twostep.users import resolve_user

from tests.conftest import MakeUser


def client(url: str, realm: str, **kw: Any) -> KeycloakClient:
    return KeycloakClient(
        Settings(url=url, realm=realm, admin_username="admin", admin_password="admin", **kw)
    )


def grant_ending_at(
    kc: KeycloakClient, who: str, until: datetime, reason: str = "test", **kw: Any
) -> dict[str, Any]:
    """A real grant of the minimum length (5 min), made by a clock 5 min before `until`."""
    granted = until - timedelta(seconds=bypass.MIN_BYPASS_S)
    actor = Actor("tester@master", True, (("master", "tester"),))
    _policy, store = realm_context(kc)
    if isinstance(store, CredentialStore):
        # Provider mode: the provider's endpoint measures the window by Keycloak's own clock, which a
        # test does not move. The record a grant 5 minutes before `until` would have left is written
        # as it is stored (docs/formats.md), with its index entry; the rules and the transaction of the
        # endpoint have their own tests (tests/test_admin_rest.py, BypassRulesTest).
        user = resolve_user(kc, who)
        fields = {"marker": "true", "until": utc_iso(until), "granted_at": utc_iso(granted), "by": actor.name,
                  "reason": reason, "extended": "0", "reset_device": "true" if kw.get("reset_device") else "false"}
        if kw.get("reset_device"):
            for cred in kc.user_credentials(str(user["id"])):
                if cred.get("type") == "otp":
                    kc.delete_credential(str(user["id"]), str(cred["id"]))
            kc.logout_user(str(user["id"]))  # a device reset ends the sessions (the lost phone may hold one)
        store.write(kc, user, fields,
                    required_actions=[a for a in user.get("requiredActions") or [] if a != "CONFIGURE_TOTP"])
        return {"action": "bypass.grant", "user_id": user["id"], "username": user.get("username"),
                "until": utc_iso(until)}
    req = bypass.GrantRequest(who=who, reason=reason, duration=timedelta(seconds=bypass.MIN_BYPASS_S), **kw)
    return bypass.grant(kc, fixed_clock(granted), MemorySink([]), actor, req)


def utcnow() -> datetime:
    return datetime.now(UTC)


def audit_events(path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if kind is None or e["event"] == kind]


def user_with_old_device(make_user: MakeUser, admin: Any, realm: str, username: str) -> Any:
    """A user whose OTP device predates any grant made with a clock shifted into the past (else the
    sync would rightly see 'a new device enrolled after the grant' and end the bypass early)."""
    import pyotp

    from tests.conftest import otp_credential

    user = make_user(username)
    secret = pyotp.random_base32()
    cred = otp_credential(secret)
    cred["createdDate"] = int((utcnow() - timedelta(days=2)).timestamp() * 1000)
    rep = admin.get(f"/{realm}/users/{user.id}")
    rep["credentials"] = [cred]
    admin.put(f"/{realm}/users/{user.id}", rep)
    created = [
        c["createdDate"] for c in admin.get(f"/{realm}/users/{user.id}/credentials") if c["type"] == "otp"
    ]
    assert created == [cred["createdDate"]], created
    user.totp_secret = secret
    return user


def record_fields(admin: Any, realm: str, uid: str) -> dict[str, str]:
    """The user's bypass record as stored, in the store the realm's policy names (docs/formats.md):
    the `twostep-bypass` credential's data in provider mode, else the `twostep_bypass*` attributes.
    Keys as in the formats doc (marker, until, granted_at, by, reason, extended, reset_device)."""
    policy = json.loads((admin.get(f"/{realm}").get("attributes") or {}).get("twostep.policy") or "{}")
    if policy.get("record_store") == "credential":
        for cred in admin.get(f"/{realm}/users/{uid}/credentials"):
            if cred["type"] == "twostep-bypass":
                return dict(json.loads(cred["credentialData"]))
        return {}
    attrs = admin.get(f"/{realm}/users/{uid}").get("attributes") or {}
    names = {"twostep_bypass": "marker", **{f"twostep_bypass_{k}": k for k in
                                            ("until", "granted_at", "by", "reason", "extended", "reset_device")}}
    return {names[k]: v[0] for k, v in attrs.items() if k in names and v}
