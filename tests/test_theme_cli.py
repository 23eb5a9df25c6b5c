"""`twostep theme build-jar`, `setup --theme twostep` and `doctor` seeing the theme."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.conftest import Admin, Twostep


def test_build_jar_command(twostep: Twostep, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "twostep-theme.jar"
    r = twostep("theme", "build-jar", "--out", str(out))
    assert r.code == 0, r.err
    names = zipfile.ZipFile(out).namelist()
    assert "META-INF/keycloak-themes.json" in names
    assert "theme/twostep/login/theme.properties" in names
    bad = twostep("theme", "build-jar", "--themes-dir", str(tmp_path))
    assert bad.code == 2 and bad.err.startswith("twostep: error: no twostep login theme")


def test_setup_selects_theme_and_doctor_sees_it(twostep: Twostep, admin: Admin, realm: str) -> None:
    r = twostep("setup", "--no-service-client", "--theme", "twostep")
    assert r.code == 0, r.err
    assert admin.get(f"/{realm}")["loginTheme"] == "twostep"
    d = twostep("doctor")
    assert "[ok] login theme 'twostep' visible: found" in d.out, d.out
