"""An access pass written as docs/formats.md defines it ("The access pass"), from Python: the record of
kind `pass` with its salted SHA-256 in secretData. The provider must accept what this writes, which
is the test that both sides read the one definition the same way. Tests use it for windows shorter
than a grant's 5-minute minimum (the provider measures a grant by Keycloak's own clock)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from twostep.policy import utc_iso

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPED = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


def new_pass() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def secret_data(access_pass: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    canonical = access_pass.replace("-", "").upper()
    digest = hashlib.sha256(f"{salt}:{canonical}".encode()).hexdigest()
    return json.dumps({"algorithm": "sha256", "hash": digest, "salt": salt}, sort_keys=True)


def write_pass_record(admin: Any, realm: str, user_id: str, until: datetime, use: str = "multi",
                      window: timedelta = timedelta(minutes=5)) -> str:
    """A pass bypass ending at `until` (granted `window` before), as the provider's grant stores it."""
    access_pass = new_pass()
    fields = {"marker": "true", "until": utc_iso(until), "granted_at": utc_iso(until - window), "by": "hilde",
              "reason": "lost phone", "extended": "0", "reset_device": "false", "kind": "pass", "pass_use": use,
              "pass_used": "0"}
    rep = admin.get(f"/{realm}/users/{user_id}")
    rep["credentials"] = [{"type": "twostep-bypass", "userLabel": "twostep bypass",
                           "secretData": secret_data(access_pass),
                           "credentialData": json.dumps(fields, sort_keys=True, separators=(",", ":"))}]
    admin.put(f"/{realm}/users/{user_id}", rep)
    return access_pass
