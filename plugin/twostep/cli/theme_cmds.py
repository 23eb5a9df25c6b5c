"""`twostep theme build-jar`: the login theme as a JAR for Keycloak's providers/ folder."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidInput
from ..theme_jar import ThemeJarError, build_theme_jar, default_themes_dir


@click.group()
def theme() -> None:
    """The twostep login theme."""


@theme.command("build-jar")
@click.option("--out", default="dist/twostep-theme.jar", show_default=True, help="Where to write the JAR.")
@click.option("--themes-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding twostep/login (default: the themes installed with the package).")
def build_jar(out: str, themes_dir: Path | None) -> None:
    """Build the theme JAR (META-INF/keycloak-themes.json + theme/twostep/login/...)."""
    if themes_dir is None:
        try:
            themes_dir = default_themes_dir()
        except ThemeJarError as exc:
            raise InvalidInput(str(exc)) from None
    if not (themes_dir / "twostep" / "login" / "theme.properties").is_file():
        raise InvalidInput(f"no twostep login theme under {themes_dir}")
    target = Path(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create {target.parent}: {exc.strerror}") from None
    path = build_theme_jar(themes_dir, target)
    click.echo(f"wrote {path} (copy it into Keycloak's providers/ folder; then `twostep setup --theme twostep`)")
