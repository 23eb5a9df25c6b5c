"""A federated user Keycloak does not import is made anew at every login ("created" now each time):
their grace starts at the policy's enforce_since, never at "now" (docs/formats.md, "Doors")."""

from __future__ import annotations

import json
import time

from tests.conftest import Admin, Browser, Federate, Twostep
from tests.support.ldap import Directory


def set_enforce_since(admin: Admin, realm: str, days_ago: float) -> None:
    attrs = admin.get(f"/{realm}")["attributes"]
    policy = json.loads(attrs["twostep.policy"])
    policy["enforce_since"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days_ago * 86400))
    attrs["twostep.policy"] = json.dumps(policy, sort_keys=True, separators=(",", ":"))
    admin.put(f"/{realm}", {"realm": realm, "attributes": attrs})


def test_ldap_import_off_grace_starts_at_enforce_since(
        twostep: Twostep, federate: Federate, browser: Browser, admin: Admin, realm: str, directory: Directory) -> None:
    r = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "7")
    assert r.code == 0, r.err
    federate("READ_ONLY", import_enabled=False)

    set_enforce_since(admin, realm, 2)  # control: the policy is 2 days old, the grace is not over
    page = browser().login("alice", directory.passwords["alice"])
    assert page.kind != "configure-totp", page.summary()

    set_enforce_since(admin, realm, 8)  # 8 days: over for every user, whenever Keycloak says they were made
    page = browser().login("alice", directory.passwords["alice"])
    assert page.kind == "configure-totp", page.summary()
    assert admin.get(f"/{realm}/users", username="alice", exact="true")[0]["id"].startswith("f:"), \
        "the user is not imported (its id is a federated one)"
