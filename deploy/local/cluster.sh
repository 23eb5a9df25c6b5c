#!/usr/bin/env bash
# Keycloak as organizations run it, on this machine: PostgreSQL 15 (Debian's packages) and two
# Keycloak nodes in production mode (`kc.sh build` once, `kc.sh start --optimized` per node),
# clustered through Keycloak's own Infinispan caches with the jdbc-ping stack (the nodes find each
# other through a table in the same database). Everything on loopback, under one state directory.
#   cluster.sh start [NAME] | stop [NAME] | status [NAME] | info [NAME] | env [NAME] | psql [NAME] [ARGS]
# `start` prints one line per node URL (node 1 first) on stdout; timings go to stderr and to
# STATE/timings, and at the end a summary (each node's URL, admin console, health URL and log, the
# database and its log, how to stop) to stderr; `info` prints that summary again. Nothing system-wide is touched: PostgreSQL runs from /usr/lib/postgresql/15/bin with
# its own data directory, port and socket directory.
# Env: KEYCLOAK_VERSION (deploy/keycloak-version), TWOSTEP_CACHE (~/.cache/keycloak-twostep), CLUSTER_FRESH=1 (new
#      empty database; default 1: every start is a clean cluster), TWOSTEP_PROVIDER_JAR (the provider
#      JAR, installed in every node's providers/ before the build), KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD
#      (admin/admin), KC_JAVA_HOME, KC_NODE_HEAP (-Xmx1g), CLUSTER_NODES (2), KC_START_TIMEOUT (300).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The one Keycloak version pin (deploy/keycloak-version): the tests, the image, compose,
# Kubernetes and the docs are checked against it (tests/test_deploy_pins.py).
VERSION="${KEYCLOAK_VERSION:-$(cat "$REPO/deploy/keycloak-version")}"
CACHE="${TWOSTEP_CACHE:-$HOME/.cache/keycloak-twostep}"
ZIP="$CACHE/dist/keycloak-quarkus-dist-$VERSION.zip"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
cmd="${1:-}"
NAME="${2:-prod}"
STATE="$CACHE/clusters/$NAME"
PG="$STATE/pg"
NODES="${CLUSTER_NODES:-2}"

STARTING=0
# A start that fails half-way stops what it started (no PostgreSQL or node left behind).
die() { echo "cluster.sh: $*" >&2; [ "$STARTING" = 1 ] && { STARTING=0; stop; }; exit 1; }
say() { echo "cluster.sh: $*" >&2; }

# PostgreSQL refuses to run as root. As root, run its programs in a user namespace whose only user
# is the `postgres` system user's id mapped onto root: inside, postgres sees a non-root user that
# owns its data directory; outside, the files stay root's, under root's 0700 home, and no system
# file or permission changes. A non-root caller runs them directly.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    local uid gid
    uid="$(id -u postgres 2>/dev/null || echo 65534)"; gid="$(id -g postgres 2>/dev/null || echo 65534)"
    unshare --user --map-user="$uid" --map-group="$gid" "$@"
  else
    "$@"
  fi
}

# A loopback port nobody listens on; with an offset, a port P such that P+offset is free too (JGroups'
# failure detector FD_SOCK2 listens on bind port + 50000).
free_port() {
  python3 - "${1:-0}" <<'EOF'
import random, socket, sys
off = int(sys.argv[1])
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
if not off:
    print(free(0)); sys.exit()
for _ in range(200):
    p = random.randint(10000, 65535 - off - 1)
    if free(p) and free(p + off):
        print(p); sys.exit()
sys.exit("no free port pair")
EOF
}

pick_java() {
  if [ -n "${KC_JAVA_HOME:-}" ]; then echo "$KC_JAVA_HOME/bin/java"; return; fi
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-21-openjdk-amd64 /usr/lib/jvm/temurin-25-jdk-amd64; do
    [ -x "$j/bin/java" ] && { echo "$j/bin/java"; return; }
  done
  command -v java || die "no Java found (Keycloak needs Java 17+)"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
pg_running() { pid_alive "$PG/pid"; }
node_dir() { echo "$STATE/node$1"; }
node_running() { pid_alive "$(node_dir "$1")/pid"; }

now_ms() { date +%s%3N; }
timing() { # name, start ms: print and record "name seconds"
  local s; s="$(awk -v a="$2" -v b="$(now_ms)" 'BEGIN{printf "%.1f", (b-a)/1000}')"
  echo "$1 $s" >> "$STATE/timings"
  say "$1: ${s}s"
}

pg_start() {
  [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 is not installed ($PGBIN/initdb missing; Debian package postgresql-15)"
  command -v unshare >/dev/null || [ "$(id -u)" != 0 ] || die "unshare (util-linux) is required to run PostgreSQL as root"
  local t0; t0="$(now_ms)"
  mkdir -p "$PG"
  if [ "${CLUSTER_FRESH:-1}" = "1" ] || [ ! -f "$PG/data/PG_VERSION" ]; then
    rm -rf "$PG/data"
    # A password only this cluster knows; Keycloak connects over TCP with it (scram), the harness's
    # own psql calls use the private socket directory (trust, reachable by this user only).
    python3 -c 'import secrets; print(secrets.token_urlsafe(18))' > "$PG/password"
    chmod 600 "$PG/password"
    as_pg "$PGBIN/initdb" -D "$PG/data" -U keycloak --pwfile="$PG/password" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 > "$PG/initdb.log" 2>&1 \
      || { tail -n 20 "$PG/initdb.log" >&2; die "initdb failed (log: $PG/initdb.log)"; }
  fi
  local port; port="$(free_port)"
  echo "$port" > "$PG/port"
  mkdir -p "$PG/run"; chmod 700 "$PG/run"
  # setsid: PostgreSQL leaves the caller's session, so a pytest Ctrl-C does not reach it half-way.
  as_pg setsid "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/postgres.log" -w -t 60 \
      -o "-p $port -k $PG/run -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
    || { tail -n 20 "$PG/postgres.log" >&2; die "PostgreSQL did not start (log: $PG/postgres.log)"; }
  head -n1 "$PG/data/postmaster.pid" > "$PG/pid"
  if ! psql_q -tAc "select 1 from pg_database where datname='keycloak'" | grep -q 1; then
    psql_q -c "create database keycloak" >/dev/null
  fi
  timing postgres_start "$t0"
}

psql_q() { psql -X -q -h "$PG/run" -p "$(cat "$PG/port")" -U keycloak -d "${PGDATABASE:-postgres}" "$@"; }

pg_stop() {
  pg_running || { rm -f "$PG/pid"; return 0; }
  as_pg "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w -t 60 stop >/dev/null 2>&1 || kill -TERM "$(cat "$PG/pid")" 2>/dev/null || true
  for _ in $(seq 1 30); do pg_running || break; sleep 1; done
  rm -f "$PG/pid"
}

# The build options: what an operator fixes at build time (kc.sh build), identical on every node.
BUILD_OPTS=(--db=postgres --cache=ispn --cache-stack=jdbc-ping --health-enabled=true --metrics-enabled=true)

# One unpacked, built distribution shared as the template of every node: unpacked from the zip, the
# provider JAR put in providers/, `kc.sh build` run once. Rebuilt only when the version, the build
# options or the JAR changed (a stamp records them), like an operator's image.
build_dist() {
  local dist="$STATE/dist-$VERSION" stamp want jar="${TWOSTEP_PROVIDER_JAR:-}"
  [ -s "$ZIP" ] || bash "$REPO/deploy/local/keycloak.sh" fetch >/dev/null
  [ -z "$jar" ] || [ -f "$jar" ] || die "TWOSTEP_PROVIDER_JAR: no such file $jar"
  want="$VERSION ${BUILD_OPTS[*]} $( [ -n "$jar" ] && sha256sum "$jar" | cut -d' ' -f1 )"
  stamp="$dist/.twostep-build"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "build_cached 0.0" >> "$STATE/timings"
    say "build: cached ($want)"
    echo "$dist/keycloak-$VERSION"; return
  fi
  local t0; t0="$(now_ms)"
  rm -rf "$dist"; mkdir -p "$dist"
  (cd "$dist" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$ZIP")
  chmod +x "$dist/keycloak-$VERSION"/bin/*.sh
  [ -n "$jar" ] && cp "$jar" "$dist/keycloak-$VERSION/providers/"
  JAVA="$(pick_java)" "$dist/keycloak-$VERSION/bin/kc.sh" build "${BUILD_OPTS[@]}" > "$dist/build.log" 2>&1 \
    || { tail -n 30 "$dist/build.log" >&2; die "kc.sh build failed (log: $dist/build.log)"; }
  echo "$want" > "$stamp"
  timing kc_build "$t0"
  echo "$dist/keycloak-$VERSION"
}

node_start() { # node number, built distribution
  local n="$1" dist="$2" dir; dir="$(node_dir "$n")"
  local t0; t0="$(now_ms)"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -a "$dist" "$dir/keycloak"
  # Without the provider JAR (which carries the login theme), the project's theme folders, as the
  # dev instances have them; with it, the JAR's theme only (one theme of one name).
  if [ -z "${TWOSTEP_PROVIDER_JAR:-}" ]; then
    for t in "$REPO"/themes/*/; do
      [ -f "$t/login/theme.properties" ] && ln -sfn "${t%/}" "$dir/keycloak/themes/$(basename "$t")"
    done
  fi
  local port mport jport
  port="$(free_port)"; mport="$(free_port)"; jport="$(free_port 50000)"
  echo "$port" > "$dir/port"; echo "$mport" > "$dir/mport"; echo "$jport" > "$dir/jport"
  # Loopback only: the JGroups transport binds 127.0.0.1 on its own port, and that address is what
  # jdbc-ping writes into the shared table for the other node to dial.
  JAVA="$(pick_java)" \
  JAVA_OPTS_APPEND="-Djgroups.bind.address=127.0.0.1 -Djgroups.bind_addr=127.0.0.1 -Djgroups.bind.port=$jport -Djava.net.preferIPv4Stack=true" \
  JAVA_OPTS_KC_HEAP="${KC_NODE_HEAP:--Xms128m -Xmx1g}" \
  KC_BOOTSTRAP_ADMIN_USERNAME="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}" \
  KC_BOOTSTRAP_ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}" \
  KC_DB_PASSWORD="$(cat "$PG/password")" \
  setsid "$dir/keycloak/bin/kc.sh" start --optimized \
      --http-enabled=true --hostname-strict=false --http-host=127.0.0.1 --http-port="$port" \
      --http-management-port="$mport" \
      --db-url="jdbc:postgresql://127.0.0.1:$(cat "$PG/port")/keycloak" --db-username=keycloak \
      >"$dir/keycloak.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  local url="http://127.0.0.1:$port" t1=$SECONDS
  until curl -fs -o /dev/null "$url/realms/master"; do
    node_running "$n" || { tail -n 40 "$dir/keycloak.log" >&2; die "node $n exited during start (log: $dir/keycloak.log)"; }
    [ $((SECONDS - t1)) -gt "${KC_START_TIMEOUT:-300}" ] && die "node $n did not answer within ${KC_START_TIMEOUT:-300}s"
    sleep 1
  done
  timing "node${n}_start" "$t0"
}

# The cluster has formed when every node's log shows an Infinispan view with all members: either a
# plain view (ISPN000094, the new node found the other in the jdbc-ping table and joined) or a
# merged one (ISPN000093: under load both nodes can come up alone, and JGroups' MERGE3 joins the two
# singleton views some 30 to 60 s later).
wait_view() {
  local t0; t0="$(now_ms)"
  local deadline=$((SECONDS + ${CLUSTER_VIEW_TIMEOUT:-240})) n
  for n in $(seq 1 "$NODES"); do
    until grep -Eq "ISPN00009[34]: Received new(, MERGED)? cluster view .*\($NODES\)" "$(node_dir "$n")/keycloak.log"; do
      [ $SECONDS -gt $deadline ] && die "node $n never saw a cluster view with $NODES members (log: $(node_dir "$n")/keycloak.log)"
      sleep 1
    done
  done
  timing cluster_view "$t0"
}

start() {
  if node_running 1; then status; return 0; fi
  stop
  mkdir -p "$STATE"; : > "$STATE/timings"
  echo "${TWOSTEP_PROVIDER_JAR:-}" > "$STATE/provider"
  STARTING=1
  local t0; t0="$(now_ms)"
  pg_start
  local dist; dist="$(build_dist)"
  # Node 1 first: it creates the schema and the bootstrap admin; the next nodes join a ready database.
  local n
  for n in $(seq 1 "$NODES"); do node_start "$n" "$dist"; done
  wait_view
  timing cluster_total "$t0"
  STARTING=0
  summary >&2
  for n in $(seq 1 "$NODES"); do echo "http://127.0.0.1:$(cat "$(node_dir "$n")/port")"; done
}

# How to reach every node and where everything logs (start prints it on stderr; `info` prints it again).
summary() {
  local n dir url jar
  jar="$(cat "$STATE/provider" 2>/dev/null || true)"
  echo "cluster $NAME: Keycloak $VERSION in production mode, $NODES nodes on PostgreSQL, state in $STATE"
  echo "  provider: ${jar:-none (theme folders of this repository are linked in instead)}"
  echo "  built with: kc.sh build ${BUILD_OPTS[*]}  (log: $STATE/dist-$VERSION/build.log)"
  for n in $(seq 1 "$NODES"); do
    dir="$(node_dir "$n")"; url="http://127.0.0.1:$(cat "$dir/port")"
    echo "  node$n: $url  admin console $url/admin/  health http://127.0.0.1:$(cat "$dir/mport")/health/ready"
    echo "         log $dir/keycloak.log  (JGroups 127.0.0.1:$(cat "$dir/jport"), pid $(cat "$dir/pid"))"
  done
  echo "  admin: ${KC_BOOTSTRAP_ADMIN_USERNAME:-admin} in realm master (KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD at start)"
  echo "  postgres: 127.0.0.1:$(cat "$PG/port") database keycloak, log $PG/postgres.log  (cluster.sh psql $NAME)"
  echo "  timings: $STATE/timings    stop: bash deploy/local/cluster.sh stop $NAME"
}

stop() {
  local n pid
  for n in $(seq "$NODES" -1 1); do
    node_running "$n" || continue
    pid="$(cat "$(node_dir "$n")/pid")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  done
  for n in $(seq "$NODES" -1 1); do
    [ -f "$(node_dir "$n")/pid" ] || continue
    pid="$(cat "$(node_dir "$n")/pid")"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$(node_dir "$n")/pid"
  done
  pg_stop
}

status() {
  local rc=0 n
  if pg_running; then echo "postgres running 127.0.0.1:$(cat "$PG/port") pid $(cat "$PG/pid")"; else echo "postgres stopped"; rc=3; fi
  for n in $(seq 1 "$NODES"); do
    if node_running "$n"; then echo "node$n running http://127.0.0.1:$(cat "$(node_dir "$n")/port") pid $(cat "$(node_dir "$n")/pid") log $(node_dir "$n")/keycloak.log"
    else echo "node$n stopped"; rc=3; fi
  done
  return $rc
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  info) node_running 1 || die "cluster $NAME is not running"; summary ;;
  env)
    node_running 1 || die "cluster $NAME is not running"
    for n in $(seq 1 "$NODES"); do echo "export TWOSTEP_NODE${n}_URL=http://127.0.0.1:$(cat "$(node_dir "$n")/port")"; done
    echo "export TWOSTEP_PG_PORT=$(cat "$PG/port") TWOSTEP_PG_SOCKET=$PG/run"
    ;;
  psql) shift 2 || true; PGDATABASE=keycloak psql_q "$@" ;;
  *) die "usage: cluster.sh start|stop|status|info|env|psql [NAME] [psql args]" ;;
esac
