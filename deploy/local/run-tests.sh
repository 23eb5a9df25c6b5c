#!/usr/bin/env bash
# Everything the test suite needs, then the suite against real Keycloaks that the harnesses
# (tests/conftest.py, tests/support/cluster.py) download and start themselves.
#   bash deploy/local/run-tests.sh              CI (.ci/run): every part below, each timed
#   bash deploy/local/run-tests.sh ARGS...      lint, types, then one pytest run with ARGS (dev mode)
# The parts, in order; the first failing one stops the run (the timings so far are printed):
#   lint        ruff + mypy --strict
#   full        the whole suite except the production set, on the pinned 26.7.3 in dev mode
#   core-26.4   the provider and core login tests (-m core) on the lowest supported minor, 26.4.7
#   core-26.5   the same on 26.5.6 (26.6.x is not served by the Maven mirror this CI reaches)
#   production  the production set (-m production): PostgreSQL 15 + two production-mode nodes
# TWOSTEP_CI_PARTS="lint full ..." runs a subset; TWOSTEP_TEST_INSTANCE names the instances (test).
# pytest's exit 5 (no test collected) fails a part like any other non-zero exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T_PREPARE=$SECONDS

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

# kubeconform for the static checks of deploy/kubernetes (tests/test_deploy_k8s_keycloak.py), a Go
# module built through the Go module proxy, pinned; its schemas come from the PyPI package
# kubernetes-validate (no download from elsewhere).
KUBECONFORM_VERSION=v0.7.0
GO="$(command -v go || echo /usr/local/go/bin/go)"
if [ -x "$GO" ] && ! "$GO" version -m "$("$GO" env GOPATH)/bin/kubeconform" 2>/dev/null | grep -q "kubeconform[[:space:]]$KUBECONFORM_VERSION"; then
  echo "installing kubeconform $KUBECONFORM_VERSION (Go module proxy)" >&2
  GOFLAGS=-mod=mod "$GO" install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >&2
fi

# Locked, hash-checked versions (deploy/requirements-test.lock: pyproject's web and test extras plus
# deploy/requirements-ci.txt), then the project itself with --no-deps.
venv_install_locked deploy/requirements-test.lock ".[web,test]"
if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; fi

bash deploy/local/keycloak.sh fetch >/dev/null
LOW_VERSION=26.4.7
MID_VERSION=26.5.6
for v in "$LOW_VERSION" "$MID_VERSION"; do KEYCLOAK_VERSION="$v" bash deploy/local/keycloak.sh fetch >/dev/null; done
command -v psql >/dev/null && [ -x /usr/lib/postgresql/15/bin/initdb ] || {
  echo "installing Debian package postgresql-15 (the production set runs its own server; nothing is enabled)" >&2
  as_root apt-get update -qq
  # Only its programs are used: the harness runs its own server (tests/support/cluster.py).
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
}
# The provider JAR (its JUnit tests run in the build); the harnesses start Keycloak with it (the
# dev instances and the production nodes). A JAR given in TWOSTEP_PROVIDER_JAR is used as it is.
if [ -z "${TWOSTEP_PROVIDER_JAR:-}" ]; then
  TWOSTEP_PROVIDER_JAR="$(bash deploy/local/provider.sh build)"
fi
[ -f "$TWOSTEP_PROVIDER_JAR" ] || { echo "run-tests.sh: no provider JAR at $TWOSTEP_PROVIDER_JAR" >&2; exit 1; }
export TWOSTEP_PROVIDER_JAR

if [ $# -gt 0 ]; then
  ruff check plugin sync tests bench
  mypy
  # The harness starts Keycloak (instance "test") unless TWOSTEP_TEST_KEYCLOAK_URL points at one.
  exec python3 -m pytest "$@"
fi

INSTANCE="${TWOSTEP_TEST_INSTANCE:-test}"
PARTS="${TWOSTEP_CI_PARTS:-lint full core-26.4 core-26.5 production}"
# Packages, virtual environment, Keycloak zips and the provider build, before the first part.
TIMES=("prepare $((SECONDS - T_PREPARE))s ok")
T_ALL=$T_PREPARE
report() {
  echo "== timings ==" >&2
  for t in "${TIMES[@]}"; do echo "  $t" >&2; done
  echo "  total $((SECONDS - T_ALL))s" >&2
}
part() { # name, command...: run one part, time it, stop at the first failure
  local name="$1" t0=$SECONDS rc=0; shift
  echo "== $name: $* ==" >&2
  "$@" || rc=$?
  TIMES+=("$name $((SECONDS - t0))s $([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)")")
  echo "== $name: $((SECONDS - t0))s, exit $rc ==" >&2
  if [ $rc != 0 ]; then report; exit "$rc"; fi
}
lint() { ruff check plugin sync tests bench && mypy; }
production() { # the production set, then the cluster's start timings (cluster.sh records them)
  local rc=0 t="${TWOSTEP_CACHE:-$HOME/.cache/keycloak-twostep}/clusters/$INSTANCE/timings"
  env TWOSTEP_TEST_INSTANCE="$INSTANCE" python3 -m pytest -m production || rc=$?
  [ -f "$t" ] && { echo "production cluster start (seconds):" >&2; sed 's/^/  /' "$t" >&2; }
  return $rc
}

for p in $PARTS; do
  case "$p" in
    lint) part lint lint ;;
    full) part full env TWOSTEP_TEST_INSTANCE="$INSTANCE" python3 -m pytest -m "not production" ;;
    core-26.4) part core-26.4 env KEYCLOAK_VERSION="$LOW_VERSION" TWOSTEP_TEST_INSTANCE="$INSTANCE-26.4" \
                 python3 -m pytest -m core ;;
    core-26.5) part core-26.5 env KEYCLOAK_VERSION="$MID_VERSION" TWOSTEP_TEST_INSTANCE="$INSTANCE-26.5" \
                 python3 -m pytest -m core ;;
    production) part production production ;;
    *) echo "run-tests.sh: unknown part $p (lint full core-26.4 core-26.5 production)" >&2; exit 2 ;;
  esac
done
report
