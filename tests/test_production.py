"""The product against Keycloak as organizations run it: production mode (`kc.sh build`, `start
--optimized`) on PostgreSQL 15, two nodes clustered through Infinispan (jdbc-ping). Every change is
made through one node and checked through the other, with real logins; state is read only through
the public CLI and services (never raw attributes), so these tests hold whichever store the bypass
record lives in.

Run: `python -m pytest -m production` (the harness starts PostgreSQL and both nodes itself)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from twostep.settings import Settings
from twostep.web.app import create_app
from twostep.web.auth import WebConfig
from werkzeug.serving import make_server

from tests.conftest import Admin, Keycloak, MakeUser, Result, User
from tests.support.bypass_helpers import audit_events, client, grant_ending_at, user_with_old_device, utcnow
from tests.support.cluster import Cluster
from tests.support.login import LoginDriver
from tests.test_web_app import WebApp, free_port, make_admin

pytestmark = pytest.mark.production


# The shared fixtures (realm, make_user, browser, twostep) run against node 1 here: `keycloak` and
# `admin` are overridden for this module, so a throwaway realm is made through node 1 as usual.
@pytest.fixture(scope="session")
def keycloak(cluster: Cluster) -> Keycloak:
    return cluster.nodes[0]


@pytest.fixture(scope="session")
def admin(keycloak: Keycloak) -> Admin:
    return keycloak.admin()


@pytest.fixture(scope="session")
def node2(cluster: Cluster) -> Keycloak:
    return cluster.nodes[1]


def cli(node: Keycloak, realm: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """The real `twostep` command pointed at one node."""
    p = subprocess.run([sys.executable, "-m", "twostep", *args], env=node.env(realm, **(env or {})),
                       capture_output=True, text=True, timeout=300)
    return Result(p.returncode, p.stdout, p.stderr)


def setup(node: Keycloak, realm: str, *extra: str) -> dict[str, Any]:
    r = cli(node, realm, "setup", "--no-service-client", "--json", *extra)
    assert r.code == 0, r.err
    out: dict[str, Any] = json.loads(r.out)
    return out


def sessions(node: Keycloak, realm: str, user: User) -> list[Any]:
    return list(node.admin().get(f"/{realm}/users/{user.id}/sessions"))


def bypass_state(node: Keycloak, realm: str, who: str) -> dict[str, Any]:
    r = cli(node, realm, "bypass", "show", who, "--json")
    assert r.code == 0, r.err
    out: dict[str, Any] = json.loads(r.out)
    return out


def test_both_nodes_answer_in_production_mode(cluster: Cluster) -> None:
    for node in cluster.nodes:
        a = node.admin()
        a.get("/master")  # signs in on this node
        r = a.s.get(f"{node.url}/admin/serverinfo", timeout=30)
        assert r.status_code == 200, r.text[:300]
        assert r.json()["systemInfo"]["version"].startswith("26."), r.json()["systemInfo"]
    assert len({n.url for n in cluster.nodes}) == 2


def test_bypass_granted_through_node1_is_honoured_on_node2(
    keycloak: Keycloak, node2: Keycloak, realm: str, make_user: MakeUser
) -> None:
    setup(keycloak, realm)
    alice = make_user("alice", otp=True)
    bob = make_user("bob", otp=True)
    r = cli(keycloak, realm, "bypass", "grant", "alice", "--for", "1h", "--reason", "lost phone, node 1", "--password")
    assert r.code == 0, r.err

    on2 = LoginDriver(node2.url, realm)
    on2.login(alice.username, alice.password)
    assert on2.logged_in(), "node 2 lets alice in with the password alone"
    assert LoginDriver(node2.url, realm).login(bob.username, bob.password).kind == "otp", "bob is still asked"
    shown = bypass_state(node2, realm, "alice")
    assert shown["state"] == "active" and shown["reason"] == "lost phone, node 1"

    rv = cli(node2, realm, "bypass", "revoke", "alice", "--reason", "found it, node 2")
    assert rv.code == 0, rv.err
    assert sessions(keycloak, realm, alice) == [], "the revoke through node 2 ended the session everywhere"
    assert LoginDriver(keycloak.url, realm).login(alice.username, alice.password).kind == "otp", (
        "node 1 asks for the code again after a revoke through node 2")


def test_bypass_ends_and_sync_on_node2_ends_node1_sessions(
    keycloak: Keycloak, node2: Keycloak, realm: str, make_user: MakeUser, admin: Admin, tmp_path: Path
) -> None:
    setup(keycloak, realm)
    hana = user_with_old_device(make_user, admin, realm, "hana")
    until = utcnow().replace(microsecond=0) + timedelta(seconds=20)
    grant_ending_at(client(keycloak.url, realm), "hana", until)
    during = LoginDriver(keycloak.url, realm)
    during.login(hana.username, hana.password)
    assert during.logged_in(), "password alone on node 1 during the bypass"
    assert len(sessions(node2, realm, hana)) == 1, "node 2 sees the session opened on node 1"

    time.sleep(max(0.0, (until - utcnow()).total_seconds()) + 0.5)
    audit = tmp_path / "audit.jsonl"
    r = cli(node2, realm, "sync", "--json", env={"TWOSTEP_AUDIT_FILE": str(audit)})
    assert r.code == 0, r.err
    assert json.loads(r.out)["expired"] == 1
    assert sessions(keycloak, realm, hana) == [] and sessions(node2, realm, hana) == [], (
        "the sync through node 2 ended the session opened on node 1")
    assert during.open().kind == "login", "node 1's browser session is gone"
    page = LoginDriver(node2.url, realm).login(hana.username, hana.password)
    assert page.kind == "otp", "node 2 asks for the code once the bypass is over"
    assert bypass_state(keycloak, realm, "hana")["state"] == "none"
    (ev,) = audit_events(audit, "bypass.expire")
    assert ev["username"] == "hana" and ev["until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_two_syncs_at_once_one_per_node_each_expiry_audited_once(
    keycloak: Keycloak, node2: Keycloak, realm: str, make_user: MakeUser, admin: Admin, tmp_path: Path
) -> None:
    setup(keycloak, realm)
    kc = client(keycloak.url, realm)
    users = [user_with_old_device(make_user, admin, realm, f"conc{i}") for i in range(6)]
    for u in users:
        grant_ending_at(kc, u.username, utcnow() - timedelta(seconds=2))
    audit = tmp_path / "audit.jsonl"
    procs = [subprocess.Popen([sys.executable, "-m", "twostep", "sync", "--json"],
                              env=node.env(realm, TWOSTEP_AUDIT_FILE=str(audit)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for node in (keycloak, node2)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    summaries = [json.loads(out) for out, _ in outs]
    print("two syncs, one per node:", [(s["expired"], s["handled_by_another_run"]) for s in summaries])
    assert [s["errors"] for s in summaries] == [[], []] and all(s["ok"] for s in summaries)
    assert sum(s["expired"] for s in summaries) == len(users)
    events = audit_events(audit, "bypass.expire")
    assert sorted(e["username"] for e in events) == sorted(u.username for u in users), "each expiry audited once"
    for u in users:
        assert bypass_state(node2, realm, u.username)["state"] == "none"


def test_setup_through_node1_then_node2_plans_nothing(
    keycloak: Keycloak, node2: Keycloak, realm: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    first = cli(keycloak, realm, "setup", "--json", "--secret-file", str(secret))
    assert first.code == 0, first.err
    assert json.loads(first.out)["changes"], "the first setup has work to do"
    second = cli(node2, realm, "setup", "--json")
    assert second.code == 0, second.err
    assert json.loads(second.out)["changes"] == [], "node 2 sees everything node 1 applied"
    # The service account made through node 1 works through node 2.
    env = {"TWOSTEP_CLIENT_ID": "twostep-cli", "TWOSTEP_CLIENT_SECRET": secret.read_text().strip(),
           "TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": ""}
    st = cli(node2, realm, "status", "--json", env=env)
    assert st.code == 0, st.err + st.out
    assert json.loads(st.out)["ok"] is True


@pytest.fixture
def web2(keycloak: Keycloak, node2: Keycloak, realm: str, tmp_path: Path) -> Iterator[WebApp]:
    """The admin pages served against node 2; their client was set up through node 1."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret_file = tmp_path / "web.secret"
    # Backup codes offered, not required: the admin signs in with the code alone (with the provider,
    # "required" would first ask boss to make codes, which test_web_app covers).
    setup(keycloak, realm, "--web-url", url, "--web-secret-file", str(secret_file), "--backup-codes", "offered")
    audit = tmp_path / "audit.jsonl"
    # As in production: no CLI credentials, the pages act with the signed-in person's token or
    # twostep-web's own service account, here through node 2 only.
    settings = Settings(url=node2.url, realm=realm, audit_file=str(audit))
    app = create_app(settings, WebConfig(public_url=url, client_secret=secret_file.read_text().strip(),
                                         token_dir=str(tmp_path / "tokens")))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebApp(url, realm, node2.url, audit, app, tmp_path / "tokens")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_admin_pages_on_node2_show_what_the_cli_did_through_node1(
    keycloak: Keycloak, web2: WebApp, realm: str, make_user: MakeUser, admin: Admin
) -> None:
    boss = make_user("boss", otp=True)
    make_admin(admin, realm, boss)
    eve = make_user("eve", otp=True)
    r = cli(keycloak, realm, "bypass", "grant", "eve", "--for", "2h", "--reason", "ticket 4711 via node 1")
    assert r.code == 0, r.err

    d = web2.sign_in(boss, f"/admin/users/{eve.id}")  # the sign-in itself runs on node 2
    page = d.page
    assert page is not None and page.status == 200, d.summary()
    # The end of the bypass in words (a 2 h grant, read moments later), the ISO time in the attribute.
    assert re.search(r'<p class="warn">Active <time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" lang="en">until '
                     r"\d\d:\d\d UTC (today|tomorrow), (1 hour, 59 minutes|2 hours) left</time></p>", page.text), \
        page.text[:2000]
    assert "ticket 4711 via node 1" in page.text, page.text[:2000]
    # The overview shows what the last sync pass saw (issue 17: no scan per page view): a pass through
    # node 1, then the page on node 2.
    sync = cli(keycloak, realm, "sync")
    assert sync.code == 0, sync.err
    overview = d.open_url(web2.url + "/admin")
    assert overview.status == 200
    assert "Bypasses in force at that pass: 1;" in overview.text, overview.text[:3000]

    rv = cli(keycloak, realm, "bypass", "revoke", "eve", "--reason", "done")
    assert rv.code == 0, rv.err
    again = d.open_url(f"{web2.url}/admin/users/{eve.id}")
    assert '<p class="warn">Active ' not in again.text and "ticket 4711 via node 1" not in again.text


def test_expiry_task_ends_each_bypass_once_across_the_cluster(
    keycloak: Keycloak, node2: Keycloak, make_user: MakeUser, admin: Admin
) -> None:
    """The provider's expiry task on both nodes (every 5 s, realms exp-*: tests/conftest.py), no
    sync: each bypass ends once, with one admin event, and the sessions it let in end on both nodes."""
    from tests.conftest import create_realm
    from tests.test_bypass_hardening import OFFLINE, offline_token, refresh
    from tests.test_expiry_task import expiry_events, wait_for, write_record

    realm = create_realm(admin, prefix="exp-")
    try:
        setup(keycloak, realm, "--backup-codes", "offered")
        admin.put(f"/{realm}/events/config", {"adminEventsEnabled": True, "adminEventsDetailsEnabled": True})
        users = [make_user(f"exp{i}", otp=True, realm_name=realm) for i in range(4)]
        granted = utcnow().replace(microsecond=0)
        until = granted + timedelta(seconds=60)
        tokens: list[tuple[User, Keycloak, str]] = []
        for i, u in enumerate(users):
            write_record(keycloak, realm, u, granted, until)
            node = (keycloak, node2)[i % 2]
            b = LoginDriver(node.url, realm)
            b.login(u.username, u.password, **OFFLINE)
            assert b.logged_in(), "the password alone during the bypass"
            tokens.append((u, node, offline_token(b)))
        end = time.monotonic() + max(0.0, (until - utcnow()).total_seconds())
        while time.monotonic() < end:
            time.sleep(0.5)
        deadline = end + 5 + 10

        def refused(node: Keycloak, token: str) -> Callable[[], bool]:
            # At the node that issued it (a token names its issuer, which is the node's own URL here).
            def check() -> bool:
                r = refresh(node.url, realm, token)
                return r.status_code == 400 and r.json().get("error") == "invalid_grant"
            return check

        for u, node, token in tokens:
            wait_for(f"{u.username}'s offline token refused", refused(node, token), deadline)
        time.sleep(11)  # two more runs of the task (5 s) on whichever node: nothing more happens
        for u in users:
            events = expiry_events(node2.admin(), realm, u.id)
            assert len(events) == 1, (u.username, events)
            print(f"{u.username}: bypass end -> ended {events[0]['time'] / 1000 - until.timestamp():.1f} s")
    finally:
        try:
            admin.delete(f"/{realm}")
        except AssertionError:
            pass
