"""Package discovery, the one thing pyproject.toml cannot say: the `twostep` package lives in
plugin/twostep, its `sync` subpackage in sync/ and its themes (package data) in themes/. Every
package below those folders is found, so a new subpackage cannot be left out of the wheel."""

from setuptools import find_packages, setup

PACKAGE_DIR = {"twostep": "plugin/twostep", "twostep.sync": "sync", "twostep.themes": "themes"}
PACKAGES = [
    *find_packages("plugin", include=["twostep", "twostep.*"]),
    "twostep.sync", *(f"twostep.sync.{p}" for p in find_packages("sync")),
    # The login theme's files as package data (twostep.theme_jar.default_themes_dir).
    "twostep.themes",
]

setup(package_dir=PACKAGE_DIR, packages=PACKAGES)
