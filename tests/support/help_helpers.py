"""Filing a help request as the provider's "ask an administrator" step stores it (docs/formats.md,
"Help requests"): one `twostep-help-request` credential through the admin API (PUT /users/{id} with
credentials[], handed to the JAR's credential provider, as records.CredentialStore.write stores the
bypass record) and membership of the index group `twostep-help-requests`. Same fields, label and
secretData the provider writes; used until a test can drive the login page's form itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

HELP_TYPE = "twostep-help-request"
HELP_GROUP = "twostep-help-requests"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def index_group_id(admin: Any, realm: str) -> str:
    found = [g for g in admin.get(f"/{realm}/groups", search=HELP_GROUP, exact="true") if g["name"] == HELP_GROUP]
    if found:
        return str(found[0]["id"])
    return str(admin.post(f"/{realm}/groups", {"name": HELP_GROUP}).headers["Location"].rsplit("/", 1)[-1])


def file_request(admin: Any, realm: str, user_id: str, message: str = "", *, asked_at: datetime | None = None,
                 notified_at: str = "", credential_data: str | None = None) -> None:
    """Store a request as the provider does. `credential_data` replaces the JSON (damaged entries)."""
    data = credential_data if credential_data is not None else json.dumps(
        {"asked_at": iso(asked_at or datetime.now(UTC)), "message": message, "notified_at": notified_at},
        sort_keys=True, separators=(",", ":"))
    rep = admin.get(f"/{realm}/users/{user_id}")
    rep["credentials"] = [{"type": HELP_TYPE, "userLabel": "twostep help request", "secretData": "{}",
                           "credentialData": data}]
    admin.put(f"/{realm}/users/{user_id}", rep)
    join_index(admin, realm, user_id)


def join_index(admin: Any, realm: str, user_id: str) -> None:
    admin.put(f"/{realm}/users/{user_id}/groups/{index_group_id(admin, realm)}")


def stored_request(admin: Any, realm: str, user_id: str) -> dict[str, str] | None:
    for cred in admin.get(f"/{realm}/users/{user_id}/credentials"):
        if cred["type"] == HELP_TYPE:
            return dict(json.loads(cred["credentialData"]))
    return None


def in_index(admin: Any, realm: str, user_id: str) -> bool:
    return any(g["name"] == HELP_GROUP for g in admin.get(f"/{realm}/users/{user_id}/groups"))
