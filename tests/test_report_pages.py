"""The exports read credentials a page at a time (issue 25's benchmark: a 100,000-user export made one
Keycloak call per user): in provider mode the not-enrolled list asks the extension for the credential
types of a page of users in one call (`/twostep/users/credential-types`), as the help desk (manage-users,
never realm-admin), with the same rows the per-user reads gave."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from twostep import report
from twostep.errors import BadRequest
from twostep.keycloak_adapter import KeycloakClient
from twostep.settings import Settings

from tests.conftest import Admin, Keycloak
from tests.support.personas import helpdesk_service_account
from tests.support.twofactor import setup_realm
from tests.test_overview import add_credential, webauthn_credential

NOT_ENROLLED = 30


def test_not_enrolled_export_reads_credentials_a_page_at_a_time(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    users = [{"username": f"ne{i:02d}", "enabled": True, "email": f"ne{i:02d}@example.test"}
             for i in range(NOT_ENROLLED)]
    admin.post(f"/{realm}/partialImport", {"ifResourceExists": "FAIL", "users": users})
    make_user("otto", otp=True)
    kim = make_user("kim")  # a security key and no OTP app: enrolled, so not in the list
    add_credential(admin, realm, kim, webauthn_credential())
    client_id, secret = helpdesk_service_account(admin, realm)
    kc = KeycloakClient(Settings(url=keycloak.url, realm=realm, client_id=client_id, client_secret=secret))
    kc.get_realm()  # signed in before counting
    kc.calls.count = 0

    rows = list(report.rows(kc, "not-enrolled", datetime.now(UTC)))

    names = sorted(r["username"] for r in rows)
    assert names == [u["username"] for u in users], names  # not kim, not otto, not the service account
    # Per user, the list took one credentials read for each of the 30 (and kim); a page at a time it is
    # the policy, the bypasses, one page of users and one types call, whatever the number of users.
    assert kc.calls.count <= 10, kc.calls.count

    # The endpoint itself: types only, a page at most, unknown ids left out.
    uid = admin.get(f"/{realm}/users", username="kim", exact="true")[0]["id"]
    got = kc.credential_types([uid, str(uuid.uuid4())])
    assert list(got) == [uid] and sorted(got[uid]) == ["password", "webauthn"], got
    with pytest.raises(BadRequest):
        kc.credential_types([str(uuid.uuid4()) for _ in range(101)])
