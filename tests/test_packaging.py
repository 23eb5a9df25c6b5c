"""The wheel: built offline from a copy of the sources, installed into a fresh virtualenv (its
dependencies from the project's own environment, nothing from an index), and the installed package
finds its themes and templates and runs, from a folder that is not the checkout."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "plugin/twostep", "sync", "themes")


def _packages_in_tree() -> set[str]:
    """Every package the checkout holds, by setup.py's folder mapping."""
    setup_py = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    package_dir = next(ast.literal_eval(n.value) for n in setup_py.body
                       if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PACKAGE_DIR")
    out: set[str] = set()
    for package, src in package_dir.items():
        for init in (REPO / src).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / src).parts
            out.add(".".join((package, *rel)))
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the wheel installed (--no-deps, --no-index); returns its bin/ folder."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    dist = root / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", str(dist),
                            str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("keycloak_twostep-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    inst = subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-3000:]
    # The dependencies: the project environment's site-packages, AFTER the venv's own (where the
    # wheel is); its editable-install hook is a .pth file there, which a path entry does not run.
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "project-deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return venv / "bin"


def _run(bindir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=cwd, env={**env, "PATH": f"{bindir}:{env.get('PATH', '')}"},
                          capture_output=True, text=True, timeout=120)


PROBE = """
import json, twostep, twostep.notify, twostep.theme_jar
from importlib.resources import files
themes = twostep.theme_jar.default_themes_dir()
print(json.dumps({
    "package": twostep.__file__,
    "themes": str(themes),
    "theme": (themes / "twostep" / "login" / "theme.properties").is_file(),
    "email": sorted(p.name for p in twostep.notify.TEMPLATES.glob("*.txt")),
    "web": sorted(p.name for p in files("twostep.web").joinpath("templates").iterdir()),
    "po": sorted(p.name for p in files("twostep.web").joinpath("translations").iterdir() if p.name.endswith(".po")),
}))
"""


def test_the_wheel_holds_every_package_of_the_tree(installed: Path, tmp_path: Path) -> None:
    res = _run(installed, "python", "-c", "import pkgutil, twostep, json; print(json.dumps(sorted("
               "['twostep'] + [m.name for m in pkgutil.walk_packages(twostep.__path__, 'twostep.') if m.ispkg])))",
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)) == _packages_in_tree()


def test_the_installed_package_finds_its_themes_and_templates(installed: Path, tmp_path: Path) -> None:
    res = _run(installed, "python", "-c", PROBE, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)
    venv = str(installed.parent)
    assert found["package"].startswith(venv) and found["themes"].startswith(venv), found
    assert found["theme"] is True
    assert found["email"] == sorted(p.name for p in (REPO / "plugin/twostep/templates/email").glob("*.txt"))
    assert found["web"] == sorted(p.name for p in (REPO / "plugin/twostep/web/templates").iterdir())
    assert found["po"] == ["de.po", "ru.po"], "the pages' languages ship in the wheel"


def test_the_installed_cli_runs_and_builds_the_theme_jar(installed: Path, tmp_path: Path) -> None:
    res = _run(installed, "twostep", "--help", cwd=tmp_path)
    assert res.returncode == 0 and "Usage: twostep" in res.stdout, res.stderr
    jar = tmp_path / "theme.jar"
    res = _run(installed, "twostep", "theme", "build-jar", "--out", str(jar), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(jar) as z:
        assert "theme/twostep/login/theme.properties" in z.namelist()
