"""The production-mode cluster for tests/test_production.py: PostgreSQL 15 and two Keycloak nodes
started by deploy/local/cluster.sh (`kc.sh build`, `kc.sh start --optimized`, jdbc-ping), once per
session, stopped at its end. Only the production tests request it, so the rest of the suite never
pays for it. `node_stopped` stops one node for a test and starts it again after (the node-down tests).

TWOSTEP_TEST_CLUSTER_URLS="http://127.0.0.1:P1,http://127.0.0.1:P2" points the tests at a cluster
started by hand (`bash deploy/local/cluster.sh start NAME`) instead."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import EXPIRY_TASK_OPTIONS, INSTANCE, ROOT, Keycloak, provider_jar

CLUSTER_SCRIPT = ROOT / "deploy" / "local" / "cluster.sh"


@dataclass
class Cluster:
    nodes: list[Keycloak]
    timings: dict[str, float]
    # cluster.sh's state directory (node<N>/pid, keycloak.log, pg/); None for a cluster started by hand.
    state: Path | None = field(default=None)


def state_dir(name: str) -> Path:
    cache = Path(os.environ.get("TWOSTEP_CACHE", Path.home() / ".cache" / "keycloak-twostep"))
    return cache / "clusters" / name


def _timings(name: str) -> dict[str, float]:
    path = state_dir(name) / "timings"
    if not path.exists():
        return {}
    return {k: float(v) for k, v in (line.split() for line in path.read_text().splitlines() if line.strip())}


def running_cluster() -> Iterator[Cluster]:
    """The cluster for the whole session; the one `cluster` fixture (tests/conftest.py) runs this, so
    every production test module shares one cluster."""
    user = os.environ.get("TWOSTEP_TEST_ADMIN_USERNAME", "admin")
    password = os.environ.get("TWOSTEP_TEST_ADMIN_PASSWORD", "admin")
    urls = os.environ.get("TWOSTEP_TEST_CLUSTER_URLS")
    if urls:
        yield Cluster([Keycloak(u.strip().rstrip("/"), user, password) for u in urls.split(",")], {})
        return
    env = {**EXPIRY_TASK_OPTIONS, **os.environ, "CLUSTER_FRESH": "1", "KC_BOOTSTRAP_ADMIN_USERNAME": user,
           "KC_BOOTSTRAP_ADMIN_PASSWORD": password, "TWOSTEP_PROVIDER_JAR": provider_jar()}
    t0 = time.monotonic()
    out = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", INSTANCE], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", INSTANCE], capture_output=True)
        pytest.exit(f"could not start the production cluster: {out.stderr.strip()[-3000:]}", returncode=3)
    timings = _timings(INSTANCE)
    sys.stderr.write(f"\n[harness] production cluster started in {time.monotonic() - t0:.1f}s: "
                     + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + "\n")
    nodes = [Keycloak(line.strip(), user, password) for line in out.stdout.splitlines() if line.startswith("http")]
    try:
        assert len(nodes) == 2, out.stdout
        yield Cluster(nodes, timings, state_dir(INSTANCE))
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", INSTANCE], capture_output=True)


def _views(log: Path) -> int:
    """How many Infinispan views with every member of the cluster the node's log shows so far: plain
    views (ISPN000094) and merged ones (ISPN000093, when a node came up alone and MERGE3 joined it)."""
    if not log.exists():
        return 0
    return len(re.findall(r"ISPN00009[34]: Received new(?:, MERGED)? cluster view .*\(2\)",
                          log.read_text(errors="replace")))


@contextmanager
def node_stopped(cluster: Cluster, index: int, timeout: float = 300.0) -> Iterator[Keycloak]:
    """Stops one node (0-based) as an operator does (SIGTERM to its process group: Keycloak shuts down
    and leaves the cluster), yields the node that stays, and at the end starts the stopped node again
    with the very command line and environment cluster.sh gave it (read from /proc before the stop),
    its log appended, and waits until it answers and has rejoined (a new two-member view in the
    other node's log), so the production tests after this one find the cluster as it was."""
    if cluster.state is None:
        raise RuntimeError("a cluster started by hand (TWOSTEP_TEST_CLUSTER_URLS) is not stopped by the tests")
    node_dir = cluster.state / f"node{index + 1}"
    other_log = cluster.state / f"node{2 - index}" / "keycloak.log"
    pid = int((node_dir / "pid").read_text().strip())
    argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    env = dict(line.decode(errors="replace").split("=", 1)
               for line in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in line)
    cwd = os.readlink(f"/proc/{pid}/cwd")
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    stopped, staying = cluster.nodes[index], cluster.nodes[1 - index]
    try:
        yield staying
    finally:
        views = _views(other_log)
        # Started as cluster.sh starts it (setsid, in the background of a shell that exits), so the
        # node is no child of pytest and `cluster.sh stop` ends it through the pid file as before.
        out = subprocess.run(["bash", "-c", 'setsid "$@" >>"$0" 2>&1 </dev/null & echo $!',
                              str(node_dir / "keycloak.log"), *argv],
                             env=env, cwd=cwd, capture_output=True, text=True, check=True)
        new_pid = int(out.stdout.strip())
        (node_dir / "pid").write_text(f"{new_pid}\n")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{stopped.url}/realms/master", timeout=5).status_code == 200 \
                        and _views(other_log) > views:
                    break
            except requests.RequestException:
                pass
            if not _alive(new_pid) or time.monotonic() > deadline:
                raise RuntimeError(f"node {index + 1} did not come back (log: {node_dir / 'keycloak.log'})")
            time.sleep(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
