#!/usr/bin/env bash
# Everything the test suite needs, then the suite: lint, types, unit and integration tests
# against a real Keycloak that the harness (tests/conftest.py) downloads and starts itself.
#   bash deploy/local/run-tests.sh [pytest args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

. deploy/local/venv.sh

# Debian packages: Chromium for the browser tests (no browser download by test tools),
# systemd-analyze and promtool for the static checks of deploy/, slapd and ldap-utils for the
# LDAP federation tests (the harness runs its own slapd on a loopback port with its own config).
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)
# A JDK, not only a JRE: the provider (plugin/keycloak) is compiled here.
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null || need+=(ldap-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  # No system directory: slapd's package then creates no database and starts no daemon on port 389.
  echo "slapd slapd/no_configuration boolean true" | as_root debconf-set-selections
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Locked, hash-checked versions (deploy/requirements-test.lock: pyproject's web and test extras plus
# deploy/requirements-ci.txt), then the project itself with --no-deps.
venv_install_locked deploy/requirements-test.lock ".[web,test]"
if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; fi

bash deploy/local/keycloak.sh fetch >/dev/null
# The provider JAR (its JUnit tests run in the build); the harness starts Keycloak with it.
TWOSTEP_PROVIDER_JAR="$(bash deploy/local/provider.sh build)"
export TWOSTEP_PROVIDER_JAR

ruff check plugin sync tests bench
mypy

# The harness starts Keycloak (instance "test") unless TWOSTEP_TEST_KEYCLOAK_URL points at one.
exec python3 -m pytest "$@"
