"""The provider JAR's contents and deploy/local/provider.sh's command line (no Keycloak needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROVIDER_SCRIPT, ROOT, provider_jar

THEME = ROOT / "themes" / "twostep" / "login"


@pytest.fixture(scope="module")
def jar() -> zipfile.ZipFile:
    return zipfile.ZipFile(provider_jar())


def test_jar_name_and_path() -> None:
    out = subprocess.run(["bash", str(PROVIDER_SCRIPT), "path"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert out.stdout.strip() == str(ROOT / "plugin" / "keycloak" / "target" / "keycloak-twostep-0.2.0.jar")


def test_jar_registers_the_factories(jar: zipfile.ZipFile) -> None:
    def services(name: str) -> list[str]:
        return jar.read(f"META-INF/services/{name}").decode().split()

    assert services("org.keycloak.authentication.AuthenticatorFactory") == [
        "io.twostep.keycloak.TwostepConditionFactory", "io.twostep.keycloak.HelpRequestAuthenticatorFactory",
        "io.twostep.keycloak.AccessPassAuthenticatorFactory"]
    assert services("org.keycloak.credential.CredentialProviderFactory") == [
        "io.twostep.keycloak.BypassCredentialProviderFactory",
        "io.twostep.keycloak.CodesProvenanceCredentialProviderFactory",
        "io.twostep.keycloak.HelpRequestCredentialProviderFactory",
        "io.twostep.keycloak.OtpDisabledCredentialProviderFactory"]
    assert services("org.keycloak.protocol.ProtocolMapper") == ["io.twostep.keycloak.TwostepAssuranceMapper"]
    assert services("org.keycloak.services.resources.admin.ext.AdminRealmResourceProviderFactory") == [
        "io.twostep.keycloak.admin.TwostepAdminResourceProviderFactory"]
    # The expiry task: a custom SPI `twostep` whose one provider is `expiry` (docs/provider.md).
    assert services("org.keycloak.provider.Spi") == ["io.twostep.keycloak.expiry.ExpirySpi"]
    assert services("io.twostep.keycloak.expiry.ExpiryProviderFactory") == [
        "io.twostep.keycloak.expiry.ExpiryProviderFactory"]
    for cls in ("TwostepConditionFactory", "BypassCredentialProviderFactory",
                "CodesProvenanceCredentialProviderFactory", "TwostepDecision", "HelpRequestAuthenticatorFactory",
                "HelpRequestCredentialProviderFactory", "HelpRequestRules", "BypassIndex", "TwostepAdminEvents",
                "UserRowLock", "admin/TwostepAdminResourceProviderFactory", "admin/TwostepAdminResource",
                "admin/BypassRules"):
        assert f"io/twostep/keycloak/{cls}.class" in jar.namelist()


def test_jar_bundles_nothing_but_our_classes(jar: zipfile.ZipFile) -> None:
    classes = [n for n in jar.namelist() if n.endswith(".class")]
    assert classes and all(n.startswith("io/twostep/keycloak/") for n in classes), classes
    assert not any(n.endswith(".jar") for n in jar.namelist())


def test_jar_carries_the_theme_folder_unchanged(jar: zipfile.ZipFile) -> None:
    themes = json.loads(jar.read("META-INF/keycloak-themes.json"))
    assert themes == {"themes": [{"name": "twostep", "types": ["login"]}]}
    files = sorted(p for p in THEME.rglob("*") if p.is_file())
    assert files
    in_jar = sorted(n for n in jar.namelist() if n.startswith("theme/") and not n.endswith("/"))
    assert in_jar == sorted(f"theme/twostep/login/{p.relative_to(THEME).as_posix()}" for p in files)
    for p in files:
        assert jar.read(f"theme/twostep/login/{p.relative_to(THEME).as_posix()}") == p.read_bytes(), p


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH holding only the tools provider.sh needs besides the missing ones."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "sed", "java", "javac", "mvn"):
        found = shutil.which(tool)
        if tool not in missing and found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize(("missing", "says"), [
    (("java", "javac", "mvn"), "Java"),
    (("javac",), "javac is missing"),
    (("mvn",), "Maven (mvn) is required"),
])
def test_missing_tools_fail_with_one_line(tmp_path: Path, missing: tuple[str, ...], says: str) -> None:
    env = {**os.environ, "PATH": _path_without(tmp_path, *missing)}
    out = subprocess.run(["bash", str(PROVIDER_SCRIPT), "build"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("provider.sh: ") and says in lines[0], out.stderr


def test_unknown_command_is_an_error() -> None:
    out = subprocess.run(["bash", str(PROVIDER_SCRIPT), "deploy"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip() == "provider.sh: usage: provider.sh build|path"
