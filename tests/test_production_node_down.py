"""The provider's expiry task with one node of the production cluster stopped (issue 23): the node
that stays ends the bypass alone, on time, once. Node 1 is stopped (the first node started, the
JGroups coordinator, and the node the other production tests talk to) and started again at the end
(tests/support/cluster.py, `node_stopped`), so the tests after this one find the cluster as it was;
this module also sorts after the other production modules. Run: `pytest -m production`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from twostep import bypass_index

from tests.conftest import Admin, Keycloak, User, create_realm
from tests.support.bypass_helpers import client, utcnow
from tests.support.cluster import Cluster, node_stopped
from tests.support.login import LoginDriver
from tests.test_bypass_hardening import OFFLINE, offline_token, refresh
from tests.test_expiry_task import expiry_events, heartbeat, wait_for, write_record
from tests.test_production import setup

pytestmark = pytest.mark.production


@pytest.fixture(scope="session")
def keycloak(cluster: Cluster) -> Keycloak:
    return cluster.nodes[0]


@pytest.fixture(scope="session")
def admin(keycloak: Keycloak) -> Admin:
    return keycloak.admin()


def test_expiry_task_runs_with_one_node_stopped(
        cluster: Cluster, keycloak: Keycloak, admin: Admin, make_user: Any) -> None:
    realm = create_realm(admin, prefix="exp-")  # the harness's task serves realms exp-* every 5 s
    try:
        setup(keycloak, realm, "--backup-codes", "offered")
        admin.put(f"/{realm}/events/config", {"adminEventsEnabled": True, "adminEventsDetailsEnabled": True})
        users: list[User] = [make_user(f"down{i}", otp=True, realm_name=realm) for i in range(2)]
        with node_stopped(cluster, 0) as node:
            a2 = node.admin()
            with pytest.raises(requests.ConnectionError):  # node 1 is really down
                requests.get(f"{keycloak.url}/realms/{realm}", timeout=10)
            granted = utcnow().replace(microsecond=0)
            until = granted + timedelta(seconds=30)
            tokens: list[str] = []
            for u in users:
                write_record(node, realm, u, granted, until)
                b = LoginDriver(node.url, realm)
                b.login(u.username, u.password, **OFFLINE)
                assert b.logged_in(), "the password alone during the bypass, on the node that stays"
                tokens.append(offline_token(b))
                sso = LoginDriver(node.url, realm)
                sso.login(u.username, u.password)
                assert sso.logged_in()
                assert len(a2.get(f"/{realm}/users/{u.id}/sessions")) == 1
            kc = client(node.url, realm)
            assert all(bypass_index.of_user(kc, u.id) for u in users)

            end = time.monotonic() + max(0.0, (until - utcnow()).total_seconds())
            while time.monotonic() < end:
                time.sleep(0.5)
            interval = float((heartbeat(a2, realm) or {}).get("interval_s", 5))
            # A run may have been under way on node 1 when it stopped: its cluster lock lasts one
            # interval, so the deadline is the bypass's end + two intervals + 10 s.
            deadline = end + 2 * interval + 10

            def refused(token: str) -> Callable[[], bool]:
                def check() -> bool:
                    r = refresh(node.url, realm, token)
                    return r.status_code == 400 and r.json().get("error") == "invalid_grant"
                return check

            def record_gone(uid: str) -> Callable[[], bool]:
                return lambda: "twostep-bypass" not in [c["type"] for c in a2.get(f"/{realm}/users/{uid}/credentials")]

            def entry_gone(uid: str) -> Callable[[], bool]:
                return lambda: not bypass_index.of_user(kc, uid)

            for u, token in zip(users, tokens, strict=True):
                wait_for(f"{u.username}'s offline token refused", refused(token), deadline)
                wait_for(f"{u.username}'s record gone", record_gone(u.id), deadline)
                wait_for(f"{u.username}'s index entry gone", entry_gone(u.id), deadline)
                assert a2.get(f"/{realm}/users/{u.id}/sessions") == [], "the window's sessions ended"
            ended_at = time.monotonic()
            for u in users:
                events = expiry_events(a2, realm, u.id)
                assert len(events) == 1, (u.username, events)
                details = json.loads(events[0]["representation"])
                assert (details["action"], details["username"]) == ("bypass.expire", u.username), details
                assert (details["sessions_ended"], details["offline_sessions_ended"]) == ("1", "1"), details
                print(f"node 1 down: {u.username}'s bypass end -> ended "
                      f"{events[0]['time'] / 1000 - until.timestamp():.1f} s (event time), "
                      f"seen {ended_at - end:.1f} s after the end")
            # Two more runs on the node that stays change nothing.
            time.sleep(2 * interval + 1)
            assert [len(expiry_events(a2, realm, u.id)) for u in users] == [1, 1]
        assert LoginDriver(keycloak.url, realm).login(users[0].username, users[0].password).kind == "otp", (
            "node 1, started again, asks for the code: the bypass is over there too")
    finally:
        try:
            admin.delete(f"/{realm}")
        except AssertionError:
            pass
