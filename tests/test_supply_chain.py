"""Dependencies: floors above known advisories, and lock files (exact versions with hashes) that the
container image and CI install from, with the project itself installed with --no-deps."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_LOCK = REPO / "deploy" / "requirements.lock"
TEST_LOCK = REPO / "deploy" / "requirements-test.lock"

# package -> the first version without the advisories we know of (issue 14 item 12).
ADVISORY_FLOORS = {
    "requests": "2.32.4",   # CVE-2024-47081 (.netrc credentials leak)
    "jinja2": "3.1.6",      # CVE-2024-56326, CVE-2025-27516 (sandbox escapes)
    "flask": "3.1.1",       # CVE-2025-47278
    "werkzeug": "3.1.4",    # CVE-2024-49766, CVE-2024-49767, CVE-2025-66221
    "authlib": "1.6.6",     # CVE-2024-37568 (1.3.1) and the JOSE/CSRF fixes up to 1.6.6
    "gunicorn": "23.0.0",   # CVE-2024-1135, CVE-2024-6827 (request smuggling)
}


def _declared(extras: tuple[str, ...]) -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    return reqs


def _floor(req: Requirement) -> Version | None:
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(lows) if lows else None


def _lock(path: Path) -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes) of a pip-compile --generate-hashes file."""
    text = path.read_text(encoding="utf-8")
    out: dict[str, tuple[Version, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if m:
            name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
            out[name] = (Version(m.group(2)), block.count("--hash=sha256:"))
    return out


def test_floors_are_above_known_advisories() -> None:
    declared = {re.sub(r"[-_.]+", "-", r.name).lower(): r for r in _declared(("web",))}
    for name, first_fixed in ADVISORY_FLOORS.items():
        assert name in declared, f"{name} must be declared (with a floor) in pyproject.toml"
        floor = _floor(declared[name])
        assert floor is not None and floor >= Version(first_fixed), (name, str(declared[name].specifier))


@pytest.mark.parametrize(("lock", "extras"), [(RUNTIME_LOCK, ("web",)), (TEST_LOCK, ("web", "test"))])
def test_lock_pins_every_dependency_with_hashes_within_the_floors(lock: Path, extras: tuple[str, ...]) -> None:
    pins = _lock(lock)
    assert pins, f"{lock} has no pinned packages"
    for name, (_version, hashes) in pins.items():
        assert hashes >= 1, f"{name} in {lock.name} has no hash"
    for req in _declared(extras):
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{name} (pyproject.toml) is missing from {lock.name}: regenerate it"
        assert req.specifier.contains(pins[name][0], prereleases=True), (name, str(pins[name][0]), str(req))
    for name, first_fixed in ADVISORY_FLOORS.items():
        assert pins[name][0] >= Version(first_fixed), (lock.name, name)


def test_image_and_ci_install_from_the_locks() -> None:
    docker = (REPO / "deploy" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"pip install [^;]*--require-hashes -r /tmp/requirements\.lock", docker), "image: the lock"
    assert re.search(r"pip install [^;]*--no-deps /wheels/keycloak_twostep-", docker), "image: project --no-deps"
    assert "COPY deploy/requirements.lock " in docker
    venv = (REPO / "deploy" / "local" / "venv.sh").read_text(encoding="utf-8")
    assert re.search(r"pip install [^\n]*--require-hashes -r \"\$lock\"", venv)
    assert re.search(r"pip install [^\n]*--no-deps -e", venv)
    ci = (REPO / "deploy" / "local" / "run-tests.sh").read_text(encoding="utf-8")
    assert re.search(r"^venv_install_locked deploy/requirements-test\.lock ", ci, re.M), "CI: the test lock"
    assert not re.search(r"^venv_install ", ci, re.M), "CI must not resolve dependencies again"
    ci_reqs = (REPO / "deploy" / "requirements-ci.txt").read_text(encoding="utf-8")
    pins = _lock(TEST_LOCK)
    for line in ci_reqs.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            assert re.sub(r"[-_.]+", "-", req.name).lower() in pins, f"{req.name} (requirements-ci.txt) not locked"
