#!/usr/bin/env bash
# Fetch, start, stop a local Keycloak (dev mode, H2) for the demo and the test suite.
#   keycloak.sh fetch | start [NAME] | stop [NAME] | status [NAME] | env [NAME]
# NAME separates instances (default "dev"; the tests use "test") so the demo and a test run can
# live side by side. Each instance has its own unpacked copy, pid, port and log.
# Env: KEYCLOAK_VERSION (deploy/keycloak-version), TWOSTEP_CACHE (~/.cache/keycloak-twostep), KC_PORT (free port),
#      KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD (admin/admin), KEYCLOAK_FRESH=1 (wipe the instance's data),
#      KC_JAVA_HOME (JDK to run with),
#      KC_NO_THEME_LINKS=1 (do not link the project's theme folders in; removes links made before),
#      KC_PROVIDERS="a.jar b.jar" (copy these JARs into the instance's providers/ before start;
#      JARs copied by an earlier start are removed first; dev mode re-augments by itself).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The one Keycloak version pin (deploy/keycloak-version): the tests, the image, compose,
# Kubernetes and the docs are checked against it (tests/test_deploy_pins.py).
VERSION="${KEYCLOAK_VERSION:-$(cat "$REPO/deploy/keycloak-version")}"
CACHE="${TWOSTEP_CACHE:-$HOME/.cache/keycloak-twostep}"
ZIP="$CACHE/dist/keycloak-quarkus-dist-$VERSION.zip"
cmd="${1:-}"
NAME="${2:-dev}"
INST="$CACHE/instances/$NAME"
HOME_DIR="$INST/keycloak-$VERSION"

die() { echo "keycloak.sh: $*" >&2; exit 1; }

fetch() {
  [ -s "$ZIP" ] && return 0
  command -v mvn >/dev/null || die "Maven (mvn) is required to fetch Keycloak"
  mkdir -p "$CACHE/dist"
  echo "fetching org.keycloak:keycloak-quarkus-dist:$VERSION:zip through Maven" >&2
  mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" \
      -DoutputDirectory="$CACHE/dist" >&2 || die "Maven could not fetch keycloak-quarkus-dist $VERSION"
  [ -s "$ZIP" ] || die "Maven finished but $ZIP is missing"
}

pick_java() {
  if [ -n "${KC_JAVA_HOME:-}" ]; then echo "$KC_JAVA_HOME/bin/java"; return; fi
  # 17 runs every 26.x release; take it when present, else whatever java is on PATH.
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64 /usr/lib/jvm/temurin-25-jdk-amd64; do
    [ -x "$j/bin/java" ] && { echo "$j/bin/java"; return; }
  done
  command -v java || die "no Java found (Keycloak needs Java 17+)"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

running() { [ -f "$INST/pid" ] && kill -0 "$(cat "$INST/pid")" 2>/dev/null; }

start() {
  if running; then echo "http://127.0.0.1:$(cat "$INST/port")"; return 0; fi
  fetch
  mkdir -p "$INST"
  if [ ! -x "$HOME_DIR/bin/kc.sh" ]; then
    rm -rf "$HOME_DIR"
    (cd "$INST" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$ZIP")
    chmod +x "$HOME_DIR"/bin/*.sh
  fi
  [ "${KEYCLOAK_FRESH:-0}" = "1" ] && rm -rf "$HOME_DIR/data"
  # The project's theme folders are linked in, so edits show without a rebuild (dev mode caches no themes).
  for t in "$REPO"/themes/*/; do
    [ -f "$t/login/theme.properties" ] || continue
    if [ "${KC_NO_THEME_LINKS:-0}" = "1" ]; then
      [ -L "$HOME_DIR/themes/$(basename "$t")" ] && rm -f "$HOME_DIR/themes/$(basename "$t")"
      continue
    fi
    ln -sfn "${t%/}" "$HOME_DIR/themes/$(basename "$t")"
  done
  # Extra provider JARs (e.g. the theme JAR): the ones a previous start copied go first.
  if [ -f "$INST/providers.list" ]; then
    while IFS= read -r old; do [ -n "$old" ] && rm -f "$HOME_DIR/providers/$old"; done < "$INST/providers.list"
    rm -f "$INST/providers.list"
  fi
  for jar in ${KC_PROVIDERS:-}; do
    [ -f "$jar" ] || die "KC_PROVIDERS: no such file $jar"
    cp "$jar" "$HOME_DIR/providers/"
    basename "$jar" >> "$INST/providers.list"
  done
  local port mport java
  port="${KC_PORT:-$(free_port)}"; mport="$(free_port)"; java="$(pick_java)"
  echo "$port" > "$INST/port"
  export JAVA="$java"
  export KC_BOOTSTRAP_ADMIN_USERNAME="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}"
  export KC_BOOTSTRAP_ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}"
  setsid "$HOME_DIR/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port="$port" \
      --http-management-port="$mport" --hostname-strict=false \
      >"$INST/keycloak.log" 2>&1 < /dev/null &
  echo $! > "$INST/pid"
  local url="http://127.0.0.1:$port" t0=$SECONDS
  until curl -fs -o /dev/null "$url/realms/master"; do
    running || { tail -n 30 "$INST/keycloak.log" >&2; die "Keycloak exited during start (log: $INST/keycloak.log)"; }
    [ $((SECONDS - t0)) -gt "${KC_START_TIMEOUT:-300}" ] && { stop; die "Keycloak did not answer within ${KC_START_TIMEOUT:-300}s"; }
    sleep 1
  done
  echo "Keycloak $VERSION up at $url after $((SECONDS - t0))s (java: $java)" >&2
  echo "$url"
}

stop() {
  running || { rm -f "$INST/pid"; return 0; }
  local pid; pid="$(cat "$INST/pid")"
  # setsid made the launcher a group leader: stop the launcher and the JVM it started together.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$INST/pid"
}

case "$cmd" in
  fetch) fetch; echo "$ZIP" ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running http://127.0.0.1:$(cat "$INST/port") pid $(cat "$INST/pid")"; else echo "stopped"; exit 3; fi ;;
  env) running || die "instance $NAME is not running"; echo "export TWOSTEP_URL=http://127.0.0.1:$(cat "$INST/port")" ;;
  *) die "usage: keycloak.sh fetch|start|stop|status|env [NAME]" ;;
esac
