"""The expiry task purges disabled OTP devices 30 days after they were disabled, without a sign-in
(docs/formats.md, "Disabled devices"): it opens only the purge days that are over. The harness runs
the task every 5 s for realms named `exp-*`; the wait polls with a deadline."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from tests.conftest import Admin, Keycloak, User
from tests.support.bypass_helpers import utcnow
from tests.support.help_helpers import iso
from tests.support.twofactor import credential_types, setup_realm

DISABLED = "twostep-otp-disabled"


REALM_PREFIX = "exp-"  # served by the harness's expiry task (tests/conftest.py, realm)


def _group(admin: Admin, realm: str, name: str, parent: str | None = None) -> str:
    path = f"/{realm}/groups/{parent}/children" if parent else f"/{realm}/groups"
    return str(admin.post(path, {"name": name}).headers["Location"].rsplit("/", 1)[-1])


def test_the_task_purges_after_thirty_days_without_a_sign_in(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    old: User = make_user("olga")
    young: User = make_user("yuri")
    for user, days in ((old, 31), (young, 29)):
        at = utcnow() - timedelta(days=days)
        data = {"disabled_at": iso(at), "purge_after": iso(at + timedelta(days=30)), "by": "hilde",
                "label": "phone", "created": "1700000000000", "otp_credential_data": "{}"}
        rep = admin.get(f"/{realm}/users/{user.id}")
        rep["credentials"] = [{"type": DISABLED, "credentialData": json.dumps(data), "userLabel": "x"}]
        admin.put(f"/{realm}/users/{user.id}", rep)
    # The index as a reset files them: the purge day of each.
    root = _group(admin, realm, "twostep-otp-disabled")
    past = _group(admin, realm, iso(utcnow() - timedelta(days=1))[:10], root)
    _group(admin, realm, old.id, past)
    future = _group(admin, realm, iso(utcnow() + timedelta(days=1))[:10], root)
    _group(admin, realm, young.id, future)

    deadline = time.monotonic() + 5 + 10
    while DISABLED in credential_types(admin, realm, old.id):
        assert time.monotonic() < deadline, "not purged within the task's interval + 10 s"
        time.sleep(0.5)
    events = [e for e in admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{old.id}/*", max=10)
              if e["resourcePath"].endswith("/otp.purge")]
    assert len(events) == 1 and json.loads(events[0]["representation"])["actor"] == "twostep expiry task"
    assert DISABLED in credential_types(admin, realm, young.id), "a day not over yet is not opened"
    left = [g["id"] for g in admin.get(f"/{realm}/groups/{root}/children")]
    assert left == [future], "the day that is over is emptied and removed, the other kept"
