"""The production-mode cluster for tests/test_production.py: PostgreSQL 15 and two Keycloak nodes
started by deploy/local/cluster.sh (`kc.sh build`, `kc.sh start --optimized`, jdbc-ping), once per
session, stopped at its end. Only the production tests request it, so the rest of the suite never
pays for it.

TWOSTEP_TEST_CLUSTER_URLS="http://127.0.0.1:P1,http://127.0.0.1:P2" points the tests at a cluster
started by hand (`bash deploy/local/cluster.sh start NAME`) instead."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXPIRY_TASK_OPTIONS, INSTANCE, ROOT, Keycloak, provider_jar

CLUSTER_SCRIPT = ROOT / "deploy" / "local" / "cluster.sh"


@dataclass
class Cluster:
    nodes: list[Keycloak]
    timings: dict[str, float]


def _timings(name: str) -> dict[str, float]:
    cache = Path(os.environ.get("TWOSTEP_CACHE", Path.home() / ".cache" / "keycloak-twostep"))
    path = cache / "clusters" / name / "timings"
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
        yield Cluster(nodes, timings)
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", INSTANCE], capture_output=True)
