"""Prometheus metrics: the registry's values, `sync --watch --metrics-port`, `sync --once --textfile`,
and the most-overdue gauge that tells a stopped sync."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from twostep import metrics

from tests.conftest import Admin, Keycloak, MakeUser, Twostep
from tests.support.bypass_helpers import client, grant_ending_at, record_fields, user_with_old_device, utcnow
from tests.support.tcp_proxy import TcpProxy

NAMES = ("twostep_bypass_active", "twostep_bypass_expired_total", "twostep_bypass_ended_early_total",
         "twostep_enforcement_actions_total", "twostep_sync_errors_total", "twostep_keycloak_request_seconds",
         "twostep_sync_last_success_timestamp_seconds", "twostep_bypass_most_overdue_seconds")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def fresh() -> Iterator[None]:
    metrics.reset_for_tests()
    yield
    metrics.reset_for_tests()
    metrics.SYNC_STATE.clock = time.time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- in-process ------------------------------------------------------------------------------------

def test_registry_exports_the_names_and_overdue_grows_at_scrape_time(fresh: None) -> None:
    now = 1_000_000.0
    metrics.SYNC_STATE.clock = lambda: now
    metrics.record_action("r", "expire")
    metrics.record_action("r", "end_early")
    metrics.record_action("r", "enforce")
    metrics.record_error("r", "unavailable")
    metrics.observe_request("GET", 0.02)
    metrics.record_pass("r", ok=True, active=2, next_end=now + 30, now=now)
    text = metrics.exposition().decode()
    for name in NAMES:
        assert name in text, name
    assert value(text, "twostep_bypass_most_overdue_seconds", realm="r") == 0
    assert value(text, "twostep_sync_last_success_timestamp_seconds", realm="r") == now
    now += 90  # no pass since: the bypass that ended 60 s ago is still in force
    text = metrics.exposition().decode()
    assert value(text, "twostep_bypass_most_overdue_seconds", realm="r") == 60
    assert value(text, "twostep_keycloak_request_seconds_count", method="GET") == 1
    assert "_created" not in text


def test_web_process_exports_no_sync_state(fresh: None) -> None:
    """A process that never ran a pass (the web app) must not export a last success of 0."""
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    web = CollectorRegistry()
    Counter("twostep_web_requests", "x", registry=web).inc()
    metrics.attach(web)
    text = generate_latest(web).decode()
    assert "twostep_web_requests_total 1.0" in text and "twostep_keycloak_request_seconds" in text
    assert "twostep_sync_last_success_timestamp_seconds" not in text
    assert "twostep_bypass_most_overdue_seconds" not in text


def test_textfile_carries_counters_and_last_success_across_runs(fresh: None, tmp_path: Path) -> None:
    path = str(tmp_path / "twostep.prom")
    metrics.record_action("r", "expire")
    metrics.record_pass("r", ok=True, active=1, next_end=5000.0, now=4000.0)
    metrics.write_textfile(path)
    metrics.reset_for_tests()  # the next cron run is a new process
    metrics.load_textfile(path)
    metrics.record_action("r", "expire")
    metrics.record_error("r", "unavailable")
    metrics.record_failed_pass("r", now=7000.0)
    metrics.SYNC_STATE.clock = lambda: 7000.0
    umask = os.umask(0o077)  # as under systemd (UMask=0077): node_exporter must still read the file
    try:
        metrics.write_textfile(path)
    finally:
        os.umask(umask)
    text = Path(path).read_text()
    assert value(text, "twostep_bypass_expired_total", realm="r") == 2, "monotonic across runs"
    assert value(text, "twostep_sync_errors_total", realm="r", kind="unavailable") == 1
    assert value(text, "twostep_sync_last_success_timestamp_seconds", realm="r") == 4000.0, "a failure keeps it"
    assert value(text, "twostep_sync_up", realm="r") == 0
    assert value(text, "twostep_bypass_most_overdue_seconds", realm="r") == 2000.0
    assert "twostep_keycloak_request_seconds" not in text
    assert oct(Path(path).stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["twostep.prom"], "no temp file left"


# -- real Keycloak ---------------------------------------------------------------------------------

def _setup(twostep: Twostep) -> None:
    r = twostep("setup", "--no-service-client")
    assert r.code == 0, r.err


def _scrape(port: int) -> str:
    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def _wait_for(port: int, check: Callable[[str], object], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = _scrape(port)
            if check(text):
                return text
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("metrics never showed the expected values:\n" + text)


def test_watch_serves_metrics_and_counts_an_expiry(
    twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin, realm: str
) -> None:
    _setup(twostep)
    mia = user_with_old_device(make_user, admin, realm, "mia")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "twostep", "sync", "--watch", "--max-sleep", "1", "--metrics-port", str(port)],
        env=keycloak.env(realm), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = _wait_for(port, lambda t: value(t, "twostep_sync_last_success_timestamp_seconds", realm=realm))
        assert value(first, "twostep_bypass_expired_total", realm=realm) in (None, 0.0)
        until = utcnow().replace(microsecond=0) + timedelta(seconds=4)
        grant_ending_at(client(keycloak.url, realm), "mia", until)
        _wait_for(port, lambda t: value(t, "twostep_bypass_active", realm=realm) == 1)
        t = _wait_for(port, lambda t: value(t, "twostep_bypass_expired_total", realm=realm) == 1)
        assert value(t, "twostep_bypass_active", realm=realm) == 0
        assert value(t, "twostep_bypass_most_overdue_seconds", realm=realm) == 0
        assert value(t, "twostep_sync_up", realm=realm) == 1
        last = value(t, "twostep_sync_last_success_timestamp_seconds", realm=realm)
        assert last is not None and last >= until.timestamp() and abs(time.time() - last) < 10
        assert (value(t, "twostep_keycloak_request_seconds_count", method="GET") or 0) > 0
        assert "marker" not in record_fields(admin, realm, mia.id)
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).headers["Content-Type"].startswith(
            "text/plain")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "expire mia" in out, "the human output on stdout is unchanged"


def test_watch_metrics_port_only_with_watch_and_free_port(twostep: Twostep) -> None:
    r = twostep("sync", "--once", "--metrics-port", "9")
    assert r.code == 2 and "--metrics-port goes with --watch" in r.err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        r = twostep("sync", "--watch", "--metrics-port", str(busy.getsockname()[1]))
    assert r.code == 2 and "cannot listen" in r.err and "Traceback" not in r.err


def test_once_textfile_is_parseable_and_a_failed_run_keeps_last_success(
    twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    _setup(twostep)
    user_with_old_device(make_user, admin, realm, "ned")
    grant_ending_at(client(keycloak.url, realm), "ned", utcnow() - timedelta(seconds=1))
    path = tmp_path / "twostep_sync.prom"
    r = twostep("sync", "--once", "--textfile", str(path))
    assert r.code == 0, r.err
    text = path.read_text()
    assert value(text, "twostep_bypass_expired_total", realm=realm) == 1
    assert value(text, "twostep_bypass_active", realm=realm) == 0
    assert value(text, "twostep_bypass_most_overdue_seconds", realm=realm) == 0
    last = value(text, "twostep_sync_last_success_timestamp_seconds", realm=realm)
    assert last is not None and abs(time.time() - last) < 30
    target = urlparse(keycloak.url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    proxy.cut_now()
    try:
        r = twostep("sync", "--once", "--textfile", str(path), env={"TWOSTEP_URL": proxy.url, "TWOSTEP_TIMEOUT": "2"})
    finally:
        proxy.close()
    assert r.code != 0 and "cannot reach Keycloak" in r.err
    text = path.read_text()
    assert value(text, "twostep_sync_last_success_timestamp_seconds", realm=realm) == last
    assert value(text, "twostep_bypass_expired_total", realm=realm) == 1, "carried over"
    assert value(text, "twostep_sync_up", realm=realm) == 0
    assert value(text, "twostep_sync_errors_total", realm=realm, kind="unavailable") == 1


def test_most_overdue_grows_when_no_sync_can_end_a_bypass(
    twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin, realm: str
) -> None:
    """The watcher saw the bypass, then lost Keycloak: no pass ends it, and the gauge says so."""
    _setup(twostep)
    user_with_old_device(make_user, admin, realm, "ola")
    target = urlparse(keycloak.url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    port = free_port()
    env = keycloak.env(realm, TWOSTEP_URL=proxy.url, TWOSTEP_TIMEOUT="2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "twostep", "sync", "--watch", "--max-sleep", "1", "--metrics-port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        until = utcnow().replace(microsecond=0) + timedelta(seconds=5)
        grant_ending_at(client(keycloak.url, realm), "ola", until)
        _wait_for(port, lambda t: value(t, "twostep_bypass_active", realm=realm) == 1)
        proxy.cut_now()
        time.sleep(max(0.0, (until - utcnow()).total_seconds()) + 2.5)
        t1 = _scrape(port)
        overdue = value(t1, "twostep_bypass_most_overdue_seconds", realm=realm)
        assert overdue is not None and overdue > 2, t1
        time.sleep(1.0)
        later = value(_scrape(port), "twostep_bypass_most_overdue_seconds", realm=realm)
        assert later is not None and later > overdue, "computed at scrape time: it keeps growing"
        t = _wait_for(port, lambda t: (value(t, "twostep_sync_errors_total", realm=realm, kind="unavailable") or 0) > 0)
        assert value(t, "twostep_sync_up", realm=realm) == 0
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
        proxy.close()
    errors = [ln for ln in err.splitlines() if '"event": "sync.error"' in ln]
    assert errors and '"kind": "unavailable"' in errors[0], err[-2000:]
