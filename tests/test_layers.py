"""The layers of docs/architecture.md hold: import-linter checks the contracts in pyproject.toml
([tool.importlinter]) against the package as a wheel lays it out, so an upward import fails CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _installed_layout(dest: Path) -> Path:
    """The package tree as installed (pyproject's package-dir: twostep.sync lives in sync/), which an
    editable install does not give import-linter: it would not see twostep.sync at all."""
    package_dir = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-dir"]
    for package, src in sorted(package_dir.items()):
        shutil.copytree(REPO / src, dest.joinpath(*package.split(".")),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_every_module_keeps_to_its_layer(tmp_path: Path) -> None:
    res = _lint(_installed_layout(tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in res.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    root = _installed_layout(tmp_path)
    with (root / "twostep" / "flows.py").open("a", encoding="utf-8") as f:
        f.write("\nfrom .cli import common  # noqa: E402  (a service reaching up into the CLI)\n")
    res = _lint(root)
    assert res.returncode == 1
    assert "twostep.flows is not allowed to import twostep.cli" in res.stdout


def test_a_module_outside_every_layer_breaks_the_contract(tmp_path: Path) -> None:
    root = _installed_layout(tmp_path)
    (root / "twostep" / "stray.py").write_text('"""Placed in no layer."""\n', encoding="utf-8")
    res = _lint(root)
    assert res.returncode == 1
    assert "twostep.stray" in res.stdout
