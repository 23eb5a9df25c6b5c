"""The theme JAR: its layout (unit) and that a real Keycloak loads it from providers/ (slow, ~1 min:
a second Keycloak instance without the theme folder linked in, the JAR copied to its providers/)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from twostep.theme_jar import FIXED_DATE, ThemeJarError, build_theme_jar

from tests.theme_pages import (
    FREEMARKER_ERRORS,
    REPO,
    THEME_DIR,
    SimpleAdmin,
    Walker,
    load_messages,
    rendered_text,
    theme_realm,
)

KC_SCRIPT = REPO / "deploy" / "local" / "keycloak.sh"
# Per checkout (TWOSTEP_TEST_INSTANCE), so suites run side by side do not share this instance.
INSTANCE = os.environ.get("TWOSTEP_TEST_INSTANCE", "test") + "-theme-jar"


def theme_files() -> list[str]:
    return sorted(
        f"theme/twostep/login/{p.relative_to(THEME_DIR).as_posix()}"
        for p in THEME_DIR.rglob("*") if p.is_file()
    )


def test_jar_layout(tmp_path: Path) -> None:
    jar = build_theme_jar(REPO / "themes", tmp_path / "out" / "twostep-theme.jar")
    assert jar == tmp_path / "out" / "twostep-theme.jar"
    with zipfile.ZipFile(jar) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names[0] == "META-INF/"
        assert names[1] == "META-INF/MANIFEST.MF"
        assert json.loads(z.read("META-INF/keycloak-themes.json")) == {
            "themes": [{"name": "twostep", "types": ["login"]}]}
        files = [n for n in names if not n.endswith("/") and n.startswith("theme/")]
        assert files == theme_files()
        for name in files:
            rel = name.removeprefix("theme/twostep/login/")
            assert z.read(name) == (THEME_DIR / rel).read_bytes(), name
        assert "theme/twostep/login/theme.properties" in names
        assert all(i.date_time == FIXED_DATE for i in z.infolist())
        # Every directory entry precedes its contents; files are in sorted order.
        for i, name in enumerate(names):
            parent = name.rstrip("/").rpartition("/")[0]
            if parent:
                assert parent + "/" in names[:i], name
        body = names[2:]
        assert [n for n in body if not n.endswith("/")] == sorted(n for n in body if not n.endswith("/"))


def test_jar_is_reproducible(tmp_path: Path) -> None:
    a = build_theme_jar(REPO / "themes", tmp_path / "a.jar")
    b = build_theme_jar(REPO / "themes", tmp_path / "b.jar", names=["twostep"])
    assert a.read_bytes() == b.read_bytes()


def test_jar_skips_editor_litter(tmp_path: Path) -> None:
    themes = tmp_path / "themes"
    login = themes / "demo" / "login"
    (login / "messages").mkdir(parents=True)
    (login / "theme.properties").write_text("parent=keycloak.v2\n")
    (login / "messages" / "messages_en.properties").write_text("a=b\n")
    (login / "login-otp.ftl~").write_text("backup")
    (login / ".hidden").write_text("x")
    (login / ".DS_Store").write_text("x")
    with zipfile.ZipFile(build_theme_jar(themes, tmp_path / "demo.jar", names=("demo",))) as z:
        files = [n for n in z.namelist() if not n.endswith("/")]
    assert files == ["META-INF/MANIFEST.MF", "META-INF/keycloak-themes.json",
                     "theme/demo/login/messages/messages_en.properties", "theme/demo/login/theme.properties"]


def test_missing_theme_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ThemeJarError):
        build_theme_jar(tmp_path, tmp_path / "x.jar", names=("nope",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ThemeJarError):
        build_theme_jar(tmp_path, tmp_path / "x.jar", names=("empty",))


def test_module_command(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "twostep-theme.jar"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "plugin"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    r = subprocess.run([sys.executable, "-m", "twostep.theme_jar", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert out.read_bytes() == build_theme_jar(REPO / "themes", tmp_path / "same.jar").read_bytes()
    bad = subprocess.run([sys.executable, "-m", "twostep.theme_jar", "--out", str(out), "--name", "nope"],
                         capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2
    assert "nope" in bad.stderr


@pytest.fixture(scope="module")
def jar_keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Keycloak instance that knows the theme only from the JAR in providers/."""
    jar = build_theme_jar(REPO / "themes", tmp_path_factory.mktemp("jar") / "twostep-theme.jar")
    env = {**os.environ, "KEYCLOAK_FRESH": "1", "KC_NO_THEME_LINKS": "1", "KC_PROVIDERS": str(jar),
           "KC_BOOTSTRAP_ADMIN_USERNAME": "admin", "KC_BOOTSTRAP_ADMIN_PASSWORD": "admin"}
    env.pop("KC_PORT", None)
    started = subprocess.run(["bash", str(KC_SCRIPT), "start", INSTANCE], env=env,
                             capture_output=True, text=True, timeout=900)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(KC_SCRIPT), "stop", INSTANCE], capture_output=True, timeout=120)


def test_keycloak_loads_the_jar(jar_keycloak: str) -> None:
    cache = Path(os.environ.get("TWOSTEP_CACHE", Path.home() / ".cache" / "keycloak-twostep"))
    version = os.environ.get("KEYCLOAK_VERSION", "26.7.3")
    themes_dir = cache / "instances" / INSTANCE / f"keycloak-{version}" / "themes"
    assert not (themes_dir / "twostep").exists(), "the folder theme is linked in: this would not test the JAR"
    admin = SimpleAdmin(jar_keycloak)
    assert "twostep" in admin.login_themes()
    with theme_realm(admin) as realm:
        for locale in ("en", "ru"):
            page = Walker(jar_keycloak, realm).reach("login-otp", locale)
            assert page.status == 200
            assert page.page == "login-otp"
            for marker in FREEMARKER_ERRORS:
                assert marker not in page.html
            assert "template: login-otp.ftl (twostep)" in page.html
            text = " ".join(page.html.split())
            assert rendered_text(load_messages(locale)["twostepOtpLostPhoneTitle"]) in text
        href = re.search(r'href="([^"]*/login/twostep/css/twostep\.css)"', page.html)
        assert href, "our stylesheet is not linked"
        css = requests.get(urljoin(jar_keycloak + "/", href.group(1)), timeout=30)
        assert css.status_code == 200
        assert "--twostep-brand-color" in css.text
