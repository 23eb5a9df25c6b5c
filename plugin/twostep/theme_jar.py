"""Package the project's Keycloak themes as a theme JAR, with Python's zipfile (no Java build).

Keycloak loads a JAR in ``providers/`` as themes when it holds ``META-INF/keycloak-themes.json``
(``{"themes": [{"name": ..., "types": [...]}]}``) and the files under ``theme/<name>/<type>/``.
The archive is deterministic: sorted entries, fixed timestamps and permissions, so the same sources
give the same bytes.

    python -m twostep.theme_jar --out dist/twostep-theme.jar [--themes-dir themes] [--name twostep]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

# Theme types Keycloak knows; a folder with one of these names and a theme.properties is a theme.
THEME_TYPES = ("login", "account", "admin", "email", "welcome", "common")
# 1980-01-01, the earliest date a zip entry can carry: fixed so that builds are reproducible.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
MANIFEST = "META-INF/MANIFEST.MF"
THEMES_JSON = "META-INF/keycloak-themes.json"
# Editor and OS litter that must not end up in the jar.
IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db"})
IGNORED_SUFFIXES = (".swp", ".swo", "~", ".orig", ".rej")


class ThemeJarError(Exception):
    """The themes directory does not hold what was asked for."""


def default_themes_dir() -> Path:
    """The themes shipped with the package (`twostep.themes`: the repository's themes/ folder in an
    editable install, site-packages/twostep/themes from a wheel)."""
    spec = importlib.util.find_spec("twostep.themes")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ThemeJarError("the twostep themes are not installed with this package (twostep.themes); "
                         "reinstall keycloak-twostep or pass --themes-dir")
    return Path(locations[0])


def theme_types(theme_dir: Path) -> list[str]:
    """The theme types present in ``theme_dir`` (those with a theme.properties), in a fixed order."""
    return [t for t in THEME_TYPES if (theme_dir / t / "theme.properties").is_file()]


def _wanted(path: Path) -> bool:
    if any(part.startswith(".") for part in path.parts) or path.name in IGNORED_NAMES:
        return False
    return not path.name.endswith(IGNORED_SUFFIXES)


def _entry(name: str, *, directory: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name + ("/" if directory else ""), date_time=FIXED_DATE)
    info.create_system = 3  # unix, so that the permission bits below are read as such
    info.external_attr = ((0o40755 if directory else 0o100644) << 16) | (0x10 if directory else 0)
    info.compress_type = zipfile.ZIP_STORED if directory else zipfile.ZIP_DEFLATED
    return info


def jar_entries(themes_dir: Path, names: Sequence[str]) -> dict[str, bytes]:
    """Every file the JAR holds, by entry name (``theme/<name>/<type>/...``) and content."""
    files: dict[str, bytes] = {}
    descriptors: list[dict[str, object]] = []
    for name in names:
        theme_dir = themes_dir / name
        if not theme_dir.is_dir():
            raise ThemeJarError(f"no theme folder {theme_dir}")
        types = theme_types(theme_dir)
        if not types:
            raise ThemeJarError(f"{theme_dir} has no <type>/theme.properties (types: {THEME_TYPES})")
        descriptors.append({"name": name, "types": types})
        for theme_type in types:
            base = theme_dir / theme_type
            for path in sorted(base.rglob("*")):
                rel = path.relative_to(base)
                if path.is_file() and _wanted(rel):
                    files[f"theme/{name}/{theme_type}/{rel.as_posix()}"] = path.read_bytes()
    files[THEMES_JSON] = (json.dumps({"themes": descriptors}, indent=2) + "\n").encode("utf-8")
    files[MANIFEST] = b"Manifest-Version: 1.0\r\nCreated-By: twostep.theme_jar\r\n\r\n"
    return files


def _directories(entries: Iterable[str]) -> list[str]:
    dirs: set[str] = set()
    for entry in entries:
        parts = entry.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs)


def build_theme_jar(themes_dir: Path, out: Path, names: Sequence[str] = ("twostep",)) -> Path:
    """Write a Keycloak theme JAR of the themes ``names`` found in ``themes_dir`` to ``out``.

    Entries: META-INF/MANIFEST.MF first (as jar tools expect), then the directories and files in
    sorted order, every one dated 1980-01-01. Returns ``out``.
    """
    if not names:
        raise ThemeJarError("no theme names given")
    files = jar_entries(Path(themes_dir), list(names))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    ordered = [MANIFEST, *sorted(set(files) - {MANIFEST})]
    with zipfile.ZipFile(tmp, "w") as jar:
        written_dirs: set[str] = set()
        for entry in ordered:
            for directory in _directories([entry]):
                if directory not in written_dirs:
                    jar.writestr(_entry(directory, directory=True), b"")
                    written_dirs.add(directory)
            jar.writestr(_entry(entry), files[entry], compresslevel=9)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twostep.theme_jar",
        description="Build the Keycloak theme JAR (copy it into Keycloak's providers/ folder).",
    )
    parser.add_argument("--out", type=Path, default=Path("dist/twostep-theme.jar"),
                        help="where to write the JAR (default: dist/twostep-theme.jar)")
    parser.add_argument("--themes-dir", type=Path, default=None,
                        help="folder holding the theme folders (default: the themes installed with the package)")
    parser.add_argument("--name", action="append", dest="names", metavar="THEME",
                        help="theme to include (repeatable; default: twostep)")
    args = parser.parse_args(argv)
    try:
        out = build_theme_jar(args.themes_dir or default_themes_dir(), args.out, tuple(args.names or ("twostep",)))
    except ThemeJarError as exc:
        print(f"theme_jar: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
