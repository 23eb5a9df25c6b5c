"""Keycloak from the zip under systemd (deploy/systemd/keycloak): the shape of deploy/local/cluster.sh.

The unit cannot run here (no systemd as PID 1), so it is checked as the twostep units are:
``systemd-analyze verify`` and ``systemd-analyze security --offline`` on a copy whose ExecStart is a
stub, plus what must match the production tests: the optimized start, the build options (the same
`kc.sh build` line as cluster.sh, in the unit's install notes and in docs/operations.md), and
runtime-only options in the environment file, with JGroups bound the way cluster.sh binds it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.test_deploy_pins import JAR, PIN, cluster_build_options
from tests.test_deploy_static import need_tool, parse_unit, run

REPO = Path(__file__).resolve().parents[1]
UNIT_DIR = REPO / "deploy" / "systemd" / "keycloak"
UNIT = UNIT_DIR / "keycloak.service"
ENV_EXAMPLE = UNIT_DIR / "keycloak.env.example"
KC_SH = "/opt/keycloak/bin/kc.sh"
BUILD_LINE = f"{KC_SH} build " + " ".join(cluster_build_options())


def env_example() -> dict[str, str]:
    lines = [ln for ln in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def test_unit_starts_the_built_tree_optimized() -> None:
    svc = {k: v[-1] for k, v in parse_unit(UNIT)["Service"].items()}
    assert shlex.split(svc["ExecStart"]) == [KC_SH, "start", "--optimized"]
    assert svc["User"] == "keycloak" and svc["EnvironmentFile"] == "/etc/keycloak/keycloak.env"
    assert svc["ProtectSystem"] == "strict" and svc["ReadWritePaths"] == "/opt/keycloak/data"
    assert svc["NoNewPrivileges"] == "yes" and svc["CapabilityBoundingSet"] == ""
    text = UNIT.read_text(encoding="utf-8")
    assert BUILD_LINE in text, "the install notes build with other options than cluster.sh"
    assert f"/opt/keycloak-{PIN}" in text and f"{JAR} /opt/keycloak/providers/" in text


def test_env_example_holds_runtime_options_only() -> None:
    env = env_example()
    build_time = {"KC_DB", "KC_CACHE", "KC_CACHE_STACK", "KC_HEALTH_ENABLED", "KC_METRICS_ENABLED", "KC_FEATURES"}
    assert not build_time & env.keys(), "build options are fixed by kc.sh build"
    assert all(re.fullmatch(r"[A-Z_]+", k) for k in env), "plain KEY=value lines"
    for key in ("KC_DB_PASSWORD", "KC_BOOTSTRAP_ADMIN_PASSWORD"):
        assert env[key] == "REPLACE-ME", key
    opts = dict(o.removeprefix("-D").split("=", 1) for o in env["JAVA_OPTS_APPEND"].split())
    # As cluster.sh binds each node: the transport and the failure detector on the node's own address.
    assert opts["jgroups.bind.address"] == opts["jgroups.bind_addr"]
    cluster = (REPO / "deploy" / "local" / "cluster.sh").read_text(encoding="utf-8")
    assert "-Djgroups.bind.address=127.0.0.1 -Djgroups.bind_addr=127.0.0.1" in cluster


def staged(tmp_path: Path, text: str | None = None) -> Path:
    stub = tmp_path / "kc.sh"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text((text or UNIT.read_text(encoding="utf-8")).replace(KC_SH, str(stub)), encoding="utf-8")
    return unit


def test_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    tool = need_tool("systemd-analyze", "systemd")
    unit = staged(tmp_path)
    result = run([tool, "verify", "--man=no", str(unit)], cwd=tmp_path)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    result = run([tool, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)])
    assert result.returncode == 0, result.stdout[-600:] + result.stderr


def test_systemd_analyze_rejects_a_broken_keycloak_unit(tmp_path: Path) -> None:
    tool = need_tool("systemd-analyze", "systemd")
    unit = staged(tmp_path, UNIT.read_text(encoding="utf-8").replace("ProtectSystem=strict", "ProtectSystem=strcit"))
    result = run([tool, "verify", "--man=no", str(unit)], cwd=tmp_path)
    assert result.returncode != 0 or "strcit" in result.stdout + result.stderr


def test_operations_guide_has_the_zip_install() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert BUILD_LINE in text and "deploy/systemd/keycloak/keycloak.service" in text
    assert f"org.keycloak:keycloak-quarkus-dist:{PIN}:zip" in text
