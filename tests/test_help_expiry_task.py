"""The expiry task closes expired help requests inside Keycloak (docs/provider.md, "The expiry
task"): a request older than the realm's `help_expiry_days` leaves the index and its credential goes,
with one admin event, and no sync process; a younger one stays. A sync pass afterwards closes nothing
more (one record per expiry, whoever ends it). The harness runs the task every 5 s for realms named
`exp-*`; the wait polls with a deadline."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from twostep.audit import MemorySink
from twostep.lock import lease_seconds
from twostep.sync.reconcile import Options, run_once

from tests.conftest import Admin, Keycloak, MakeUser, Twostep, User
from tests.support.bypass_helpers import client
from tests.support.help_helpers import file_request, in_index, stored_request
from tests.test_help_request_login import setup
from tests.test_help_safety import file_from

REALM_PREFIX = "exp-"  # served by the harness's expiry task (tests/conftest.py, realm)


def _events(admin: Admin, realm: str, user_id: str) -> list[dict[str, Any]]:
    return [e for e in admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{user_id}/*", max=100)
            if "/help" in e["resourcePath"]]


def test_the_task_closes_expired_help_requests_once(
        twostep: Twostep, make_user: MakeUser, keycloak: Keycloak, admin: Admin, realm: str) -> None:
    setup(twostep, "--help-expiry", "3")
    now = datetime.now(UTC).replace(microsecond=0)
    dora: User = make_user("dora", otp=True)
    erik: User = make_user("erik", otp=True)
    finn: User = make_user("finn", otp=True)
    # dora asked 3 days and a minute ago (expired under the realm's 3 days), erik 2 days and 23 hours
    # ago (not yet), finn now, by a real filing on the sign-in page.
    file_request(admin, realm, dora.id, "old", asked_at=now - timedelta(days=3, minutes=1))
    file_request(admin, realm, erik.id, "younger", asked_at=now - timedelta(days=2, hours=23))
    assert file_from(keycloak, realm, finn) == "sent"

    deadline = time.monotonic() + 5 + 10
    while stored_request(admin, realm, dora.id) is not None:
        assert time.monotonic() < deadline, "not closed within the task's interval + 10 s"
        time.sleep(0.5)
    assert not in_index(admin, realm, dora.id), "the index membership went with the credential"
    [ev] = _events(admin, realm, dora.id)
    rep = json.loads(ev["representation"])
    assert ev["resourcePath"] == f"twostep/users/{dora.id}/help.expire" and ev["operationType"] == "DELETE"
    assert rep["actor"] == "twostep expiry task" and rep["expiry_days"] == "3", rep
    assert rep["asked_at"] == (now - timedelta(days=3, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), rep
    assert "old" not in json.dumps(rep), "the user's message is not in the event"
    for young in (erik, finn):
        assert stored_request(admin, realm, young.id) is not None and in_index(admin, realm, young.id)
        assert _events(admin, realm, young.id) == []

    # Sync on the same clock afterwards: nothing left to close, nothing recorded twice.
    kc = client(keycloak.url, realm)
    sink = MemorySink([])
    summary, _ = run_once(kc, now + timedelta(seconds=30), sink, "sync: test", lease_seconds(kc.settings),
                          Options(enforce=False))
    assert not summary.errors, summary.errors
    assert [e for e in sink.events if e["event"] == "help.expire"] == []
    assert len(_events(admin, realm, dora.id)) == 1
    assert stored_request(admin, realm, erik.id) is not None, "sync keeps the younger request too"
