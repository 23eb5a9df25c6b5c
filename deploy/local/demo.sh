#!/usr/bin/env bash
# The product on this machine: a local Keycloak (fetched through Maven), a demo realm with demo
# users under the two-step policy and the twostep login theme, and the admin pages.
# A first sync pass runs before the pages come up (the overview shows counts from the first look), and
# `twostep sync --watch` keeps running beside the pages.
#   bash deploy/local/demo.sh        (Ctrl-C stops the pages and the sync; `deploy/local/keycloak.sh stop` stops Keycloak)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
WEB_PORT="${TWOSTEP_WEB_PORT:-8000}"
. deploy/local/venv.sh
venv_install ".[web]"
# The provider JAR (condition, record credentials, theme) goes into the dev Keycloak's providers/.
jar="$(bash deploy/local/provider.sh build)"
url="$(KC_PROVIDERS="$jar" bash deploy/local/keycloak.sh start dev)"
export TWOSTEP_URL="$url" TWOSTEP_ADMIN_USERNAME="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}" \
       TWOSTEP_ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}" TWOSTEP_REALM=demo
STATE="${TWOSTEP_CACHE:-$HOME/.cache/keycloak-twostep}/instances/dev"
twostep demo --realm demo --web-url "http://127.0.0.1:$WEB_PORT" --web-secret-file "$STATE/web-client-secret"
# The first pass: counts for the overview, enforcement, the pass summary (pass_summary.py).
twostep sync --realm demo >/dev/null
echo "first sync pass done; twostep sync --watch keeps running beside the pages"
twostep sync --realm demo --watch &
sync_pid=$!
stop_sync() { kill "$sync_pid" 2>/dev/null || true; wait "$sync_pid" 2>/dev/null || true; }
trap stop_sync EXIT
trap 'exit 130' INT TERM
echo "admin pages on http://127.0.0.1:$WEB_PORT (Ctrl-C stops the pages and the sync; Keycloak keeps running: deploy/local/keycloak.sh stop dev)"
# The pages act with their own client twostep-web and refuse the bootstrap admin's credentials.
env -u TWOSTEP_ADMIN_USERNAME -u TWOSTEP_ADMIN_PASSWORD twostep web --realm demo --host 127.0.0.1 --port "$WEB_PORT" --client-secret-file "$STATE/web-client-secret"
