"""The layers of docs/architecture.md hold: import-linter checks the contracts in pyproject.toml
([tool.importlinter]) against the package as a wheel lays it out, so an upward import fails CI."""

from __future__ import annotations

import ast
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
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(REPO / "pyproject.toml")],
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


# The signed-in admin's e-mail lookup in bypass.py still builds its path; it moves to the adapter's
# `find_users_in_realm` with the actor split of bypass.py (issue 15), which owns that code.
_RAW_PATH_WAITING = {"_admin_emails"}
_VERBS = {"get": 0, "post": 0, "put": 0, "delete": 0, "paged": 0, "request": 1}


def _raw_paths(path: Path) -> list[str]:
    """Calls of the adapter's verbs with a literal REST path (`kc.get("/users", ...)`)."""
    found: list[str] = []
    where = path.relative_to(REPO) if REPO in path.parents else path
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Route decorators (`@bp.get("/users")`) name the pages' own URLs, not Keycloak's.
    routes = {id(d) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
              for d in n.decorator_list}

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            if id(child) in routes:
                continue
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr in _VERBS and len(child.args) > _VERBS[child.func.attr]):
                arg = child.args[_VERBS[child.func.attr]]
                first = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else arg
                if (isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("/")
                        and name not in _RAW_PATH_WAITING):
                    found.append(f"{where}:{child.lineno} in {name}()")
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_no_rest_path_outside_the_adapter() -> None:
    adapter = REPO / "plugin" / "twostep" / "keycloak_adapter"
    sources = [p for d in ("plugin/twostep", "sync") for p in sorted((REPO / d).rglob("*.py"))
               if adapter not in p.parents]
    found = [hit for p in sources for hit in _raw_paths(p)]
    assert found == [], "REST paths belong in twostep/keycloak_adapter (one method per call): " + ", ".join(found)


def test_the_raw_path_check_sees_a_path(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('def f(kc):\n    return kc.get(f"/users/{kc.realm}", "probe")\n', encoding="utf-8")
    assert _raw_paths(probe) == [f"{probe}:2 in f()"]
