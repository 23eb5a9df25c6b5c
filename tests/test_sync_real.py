"""`twostep sync` against the real Keycloak: expiry (real short bypass), early end, drift, two syncs
at once, --watch lag, and losing Keycloak in the middle of a run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from twostep.audit import sink_for
from twostep.lock import lease_seconds
from twostep.sync.reconcile import run_once

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep, otp_credential
from tests.support.bypass_helpers import (
    audit_events,
    client,
    grant_ending_at,
    record_fields,
    user_with_old_device,
    utcnow,
)
from tests.support.tcp_proxy import TcpProxy


def _setup(twostep: Twostep, *args: str) -> None:
    # Backup codes only offered at enrollment: these users sign in with a code and are not held up by the
    # codes page that `required` shows to OTP users without codes (tests/test_provider_bypass.py has it).
    r = twostep("setup", "--no-service-client", "--backup-codes", "offered", *args)
    assert r.code == 0, r.err



def test_real_short_bypass_expires_and_session_opened_during_it_ends(
    twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, browser: Browser, admin: Admin, realm: str,
    tmp_path: Path
) -> None:
    _setup(twostep)
    hana = user_with_old_device(make_user, admin, realm, "hana")
    kc = client(keycloak.url, realm)
    until = utcnow().replace(microsecond=0) + timedelta(seconds=15)
    grant_ending_at(kc, "hana", until)
    during = browser()
    during.login(hana.username, hana.password)
    assert during.logged_in(), "password alone during the bypass"
    assert len(admin.get(f"/{realm}/users/{hana.id}/sessions")) == 1
    early = twostep("sync", "--json")
    assert early.code == 0 and json.loads(early.out)["expired"] == 0, "not before its time"
    time.sleep(max(0.0, (until - utcnow()).total_seconds()) + 0.2)
    audit = tmp_path / "audit.jsonl"
    r = twostep("sync", "--json", env={"TWOSTEP_AUDIT_FILE": str(audit)})
    assert r.code == 0, r.err
    assert json.loads(r.out)["expired"] == 1
    assert "marker" not in record_fields(admin, realm, hana.id)
    assert admin.get(f"/{realm}/users/{hana.id}/sessions") == [], (
        "the session opened during the bypass is gone"
    )
    assert during.open().kind == "login"
    again = browser()
    assert again.login(hana.username, hana.password).kind == "otp", "the code is asked again"
    (ev,) = audit_events(audit, "bypass.expire")
    assert ev["username"] == "hana" and ev["until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert twostep("sync", "--json").code == 0 and audit_events(audit, "bypass.expire") == [ev]


def test_reset_device_expiry_forces_enrollment(
    twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, browser: Browser, admin: Admin, realm: str
) -> None:
    _setup(twostep)
    ivan = make_user("ivan", otp=True)
    kc = client(keycloak.url, realm)
    grant_ending_at(kc, "ivan", utcnow() - timedelta(seconds=1), reset_device=True)
    assert "otp" not in [c["type"] for c in admin.get(f"/{realm}/users/{ivan.id}/credentials")]
    r = twostep("sync")
    assert r.code == 0, r.err
    assert "CONFIGURE_TOTP" in admin.get(f"/{realm}/users/{ivan.id}")["requiredActions"]
    b = browser()
    assert b.login(ivan.username, ivan.password).kind == "configure-totp"


def test_early_end_after_new_device(twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str,
                                    tmp_path: Path) -> None:
    _setup(twostep)
    jo = make_user("joe", otp=True)
    assert twostep("bypass", "grant", "joe", "--for", "1d", "--reason", "lost", "--password",
                   "--reset-device").code == 0
    nothing = twostep("sync", "--json")
    assert json.loads(nothing.out)["ended_early"] == 0
    time.sleep(1.1)
    rep = admin.get(f"/{realm}/users/{jo.id}")
    rep["credentials"] = [otp_credential("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "new phone")]
    admin.put(f"/{realm}/users/{jo.id}", rep)
    audit = tmp_path / "a.jsonl"
    off = twostep("sync", "--json", "--no-end-early")
    assert json.loads(off.out)["ended_early"] == 0 and "marker" in record_fields(admin, realm, jo.id)
    r = twostep("sync", "--json", env={"TWOSTEP_AUDIT_FILE": str(audit)})
    assert r.code == 0 and json.loads(r.out)["ended_early"] == 1, r.out + r.err
    assert "marker" not in record_fields(admin, realm, jo.id)
    (ev,) = audit_events(audit, "bypass.end_early")
    assert "new OTP device" in ev["reason"]


def test_drift_hand_set_marker_and_group_marker(
    twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    _setup(twostep, "--decide-with", "sync")  # attribute markers are the fallback flow's
    kim = make_user("kim", otp=True)
    rep = admin.get(f"/{realm}/users/{kim.id}")
    rep["attributes"] = {**(rep.get("attributes") or {}), "twostep_bypass": ["true"]}
    admin.put(f"/{realm}/users/{kim.id}", rep)
    b = browser()
    b.login(kim.username, kim.password)
    assert b.logged_in(), "a hand-set marker does skip the code..."
    admin.post(f"/{realm}/groups", {"name": "ops", "attributes": {"twostep_bypass": ["true"]}})
    dry = twostep("sync", "--dry-run", "--json")
    kinds = sorted(a["kind"] for a in json.loads(dry.out)["actions"])
    assert kinds == ["drift_group", "drift_user"], dry.out
    audit = tmp_path / "a.jsonl"
    r = twostep("sync", env={"TWOSTEP_AUDIT_FILE": str(audit)})
    assert r.code == 0, r.err
    assert "groups carrying the bypass marker: /ops" in r.err
    assert "marker" not in record_fields(admin, realm, kim.id)
    assert admin.get(f"/{realm}/users/{kim.id}/sessions") == [], "...so all its sessions end"
    group = admin.get(f"/{realm}/groups", search="ops")[0]
    assert "twostep_bypass" not in (admin.get(f"/{realm}/groups/{group['id']}").get("attributes") or {})
    assert len(audit_events(audit, "drift.repair")) == 2
    # A damaged marker definition in the user profile is repaired too.
    profile = admin.get(f"/{realm}/users/profile")
    for a in profile["attributes"]:
        if a["name"] == "twostep_bypass_until":
            a["permissions"] = {"view": ["admin", "user"], "edit": ["admin", "user"]}
    admin.put(f"/{realm}/users/profile", profile)
    r = twostep("sync", "--json")
    assert json.loads(r.out)["drift_repaired"] == 1
    fixed = {a["name"]: a for a in admin.get(f"/{realm}/users/profile")["attributes"]}
    assert fixed["twostep_bypass_until"]["permissions"] == {"view": ["admin"], "edit": ["admin"]}


def test_two_syncs_at_once_one_event_per_expiry(
    twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    _setup(twostep)
    kc = client(keycloak.url, realm)
    users = [user_with_old_device(make_user, admin, realm, f"conc{i}") for i in range(6)]
    for u in users:
        grant_ending_at(kc, u.username, utcnow() - timedelta(seconds=2))
    audit = tmp_path / "audit.jsonl"
    env = keycloak.env(realm, TWOSTEP_AUDIT_FILE=str(audit))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "twostep", "sync", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    summaries = [json.loads(out) for out, _ in outs]
    print("two syncs:", [(s["expired"], s["handled_by_another_run"]) for s in summaries])
    assert sum(s["expired"] for s in summaries) == len(users)
    events = audit_events(audit, "bypass.expire")
    assert sorted(e["username"] for e in events) == sorted(u.username for u in users)
    for u in users:
        assert "marker" not in record_fields(admin, realm, u.id)
    assert not [r for r in admin.get(f"/{realm}/roles") if r["name"].startswith("twostep-lock-")]


def test_watch_ends_bypass_within_two_seconds(twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin,
                                              realm: str) -> None:
    _setup(twostep)
    lea = user_with_old_device(make_user, admin, realm, "lea")
    kc = client(keycloak.url, realm)
    proc = subprocess.Popen(
        [sys.executable, "-m", "twostep", "sync", "--watch", "--max-sleep", "1"],
        env=keycloak.env(realm),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until = utcnow().replace(microsecond=0) + timedelta(seconds=6)
        grant_ending_at(kc, "lea", until)
        removed = None
        deadline = time.time() + 20
        while time.time() < deadline:
            marker = record_fields(admin, realm, lea.id).get("marker")
            if marker != "true":
                removed = utcnow()
                break
            time.sleep(0.05)
        assert removed is not None, "watch never ended the bypass"
        lag = (removed - until).total_seconds()
        print(f"\n[watch] bypass until {until.isoformat()} ended {lag:+.3f} s after its time")
        assert 0 <= lag < 2.0
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "expire lea" in out


def test_keycloak_lost_mid_sync_then_converges(
    twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    _setup(twostep)
    kc = client(keycloak.url, realm)
    users = [user_with_old_device(make_user, admin, realm, f"outage{i}") for i in range(6)]
    for u in users:
        grant_ending_at(kc, u.username, utcnow() - timedelta(seconds=2))
    target = urlparse(keycloak.url)
    # Cut in the middle of the ends: after the reads of the pass (counted on a dry run, which makes
    # the same ones) and a few of its requests per end.
    counter = TcpProxy(target.hostname or "127.0.0.1", target.port or 80, cut_after_requests=10**9)
    try:
        dry = twostep("sync", "--dry-run", env={"TWOSTEP_URL": counter.url})
        assert dry.code == 0, dry.err
        reads = counter.requests
    finally:
        counter.close()
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80, cut_after_requests=reads + 8)
    audit = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_URL": proxy.url, "TWOSTEP_TIMEOUT": "2", "TWOSTEP_AUDIT_FILE": str(audit)}
    try:
        t0 = time.monotonic()
        cut = twostep("sync", env=env)
        print(
            f"\n[outage] first sync exit {cut.code} after {time.monotonic() - t0:.1f}s: {cut.err.strip()[-300:]}"
        )
        assert cut.code != 0 and proxy.cut.is_set()
        assert "twostep: error:" in cut.err and "Traceback" not in cut.err
        assert f"cannot reach Keycloak at {proxy.url}" in cut.err
        half = [u for u in users if record_fields(admin, realm, u.id).get("marker") == "true"]
        print(f"[outage] {len(users) - len(half)} of {len(users)} expiries done before the cut")
        proxy.restore()
        # A lock left by the cut run has a lease of 4 timeouts + 5 s. No sleeping: the next pass runs
        # with its clock past that lease, sweeps those locks first and ends the rest.
        kc_after = client(keycloak.url, realm)
        later = utcnow() + timedelta(seconds=4 * 2 + 5 + 0.5)
        summary, _ = run_once(kc_after, later, sink_for(str(audit)), "sync: test", lease_seconds(kc_after.settings))
        assert summary.ok, summary.errors
        print(f"[outage] converging pass removed {len(summary.locks_removed)} lock(s) left by the cut run")
        assert not [r for r in admin.get(f"/{realm}/roles") if r["name"].startswith("twostep-lock-")]
        r = twostep("sync", "--json", env=env)
        assert r.code == 0, r.err
        for u in users:
            attrs = record_fields(admin, realm, u.id)
            assert "marker" not in attrs and "until" not in attrs, u.username
        events = audit_events(audit, "bypass.expire")
        assert sorted(e["username"] for e in events) == sorted(u.username for u in users)
    finally:
        proxy.close()
