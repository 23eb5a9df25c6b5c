#!/usr/bin/env bash
# Sourced by demo.sh and run-tests.sh: a project virtual environment in .venv (or $TWOSTEP_VENV).
# Never installs into the system Python (Debian's python3 is "externally managed", PEP 668);
# installs Debian's python3-venv when the interpreter has no venv/ensurepip.
#   . deploy/local/venv.sh; venv_install ".[web]"
#   . deploy/local/venv.sh; venv_install_locked deploy/requirements-test.lock ".[web,test]"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

VENV="${TWOSTEP_VENV:-$PWD/.venv}"
venv_python() {
  local py
  py="$(command -v python3)" || { echo "python3 (3.11+) is required" >&2; exit 1; }
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required ($py)" >&2; exit 1; }
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$py" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      echo "installing Debian package python3-venv (no venv module in $py)" >&2
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      "$py" -m venv "$VENV"
    fi
  fi
  export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
}
venv_install() {
  venv_python
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$@"
}
# Exactly the locked versions (pip refuses any file whose hash is not in the lock), then the project
# itself without resolving anything again; `pip check` fails when the lock no longer satisfies
# pyproject.toml (regenerate it: see the header of the lock file and docs/operations.md).
venv_install_locked() {
  local lock="$1"; shift
  venv_python
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$@"
  "$VENV/bin/python" -m pip check >/dev/null
}
