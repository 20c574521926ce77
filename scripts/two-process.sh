#!/usr/bin/env bash
# Production as people run it, on this machine: Debian's nginx with the template from deploy/
# in front of two `ticketd serve` processes on one fresh PostgreSQL database (round robin).
# Through it run the Chromium journey and the asset checks (frontend/e2e), then the cluster
# checks (frontend/e2e-cluster): security headers exactly once, a live event caused on one
# process reaching an SSE client of the other within 1 s, and `kill -9` of the process that
# leads the projections with a ticket created afterwards listed within 5 s.
#
# Needs: nginx, envsubst (gettext-base), psql, a built `ticketd` ($TICKETD_BIN, default
# $CARGO_TARGET_DIR/debug/ticketd) and the built SPA (frontend/dist). Runs as root or not: every
# file nginx writes lives under one mktemp directory, and it listens on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="${TICKETD_BIN:-$target_dir/debug/ticketd}"
nginx_bin="${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}"
pg="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
[ -x "$bin" ] || { echo "two-process: no ticketd at $bin (cargo build --bin ticketd)" >&2; exit 1; }
[ -f frontend/dist/index.html ] || { echo "two-process: frontend/dist is missing (npm run build)" >&2; exit 1; }

work=$(mktemp -d /tmp/ticketd-two-process.XXXXXX)
database="ticketd_cluster_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
pids=()
cleanup() {
  status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$pg" -qc "drop database if exists \"$database\" with (force)" >/dev/null 2>&1 || true
  if [ "$status" -ne 0 ]; then
    echo "two-process: failed; logs:" >&2
    tail -n 40 "$work"/*.log >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_a=$(free_port); port_b=$(free_port); port_nginx=$(free_port)
while [ "$port_b" = "$port_a" ]; do port_b=$(free_port); done
while [ "$port_nginx" = "$port_a" ] || [ "$port_nginx" = "$port_b" ]; do port_nginx=$(free_port); done

# ---------------------------------------------------------------- two ticketd processes
export SECRET_KEY; SECRET_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export TICKETD_ADMIN_EMAIL=admin@example.com
export TICKETD_ADMIN_PASSWORD; TICKETD_ADMIN_PASSWORD="cluster-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export DATABASE_URL="${pg%/*}/$database"
export TICKETD_STATIC_DIR="$root/frontend/dist"
export TICKETD_DATA_DIR="$work/data"   # one attachment store for both, as on a shared volume
export TICKETD_TRUSTED_PROXIES=127.0.0.1
export RUST_LOG="${RUST_LOG:-info}"
mkdir -p "$TICKETD_DATA_DIR"
# A name of its own, so that nobody stopping "ticketd" by name on this machine hits these.
ln "$bin" "$work/ticketd-cluster" 2>/dev/null || cp "$bin" "$work/ticketd-cluster"

wait_for() { # url, pid, what
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "two-process: $3 exited" >&2; return 1; }
    sleep 0.25
  done
  echo "two-process: $3 did not answer $1" >&2; return 1
}

start_ticketd() { # name, port
  PGAPPNAME="ticketd-$1" TICKETD_ADDR="127.0.0.1:$2" \
    "$work/ticketd-cluster" serve >"$work/ticketd-$1.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$2/healthz" "$!" "ticketd $1"
}
# One after the other: the first creates the database and runs the migrations.
start_ticketd a "$port_a"; pid_a=${pids[-1]}
start_ticketd b "$port_b"; pid_b=${pids[-1]}

# ---------------------------------------------------------------- nginx
mkdir -p "$work/nginx/conf.d" "$work/nginx/temp"
TICKETD_UPSTREAM_SERVERS="server 127.0.0.1:$port_a; server 127.0.0.1:$port_b;" \
NGINX_LISTEN="127.0.0.1:$port_nginx" NGINX_CLIENT_MAX_BODY_SIZE=26m \
  envsubst '${TICKETD_UPSTREAM_SERVERS} ${NGINX_LISTEN} ${NGINX_CLIENT_MAX_BODY_SIZE}' \
  <deploy/nginx/templates/default.conf.template >"$work/nginx/conf.d/default.conf"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"   # workers need the temp dirs below
cat >"$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    log_format upstream '\$upstream_addr "\$request" \$status';
    access_log $work/nginx-access.log upstream;
    client_body_temp_path $work/nginx/temp/body;
    proxy_temp_path $work/nginx/temp/proxy;
    fastcgi_temp_path $work/nginx/temp/fastcgi;
    uwsgi_temp_path $work/nginx/temp/uwsgi;
    scgi_temp_path $work/nginx/temp/scgi;
    include $work/nginx/conf.d/*.conf;
}
CONF
"$nginx_bin" -t -q -p "$work/nginx" -e "$work/nginx-error.log" -c "$work/nginx/nginx.conf"
"$nginx_bin" -p "$work/nginx" -e "$work/nginx-error.log" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_for "http://127.0.0.1:$port_nginx/healthz" "$!" nginx

# ---------------------------------------------------------------- checks
export TICKETD_E2E_BASE_URL="http://127.0.0.1:$port_nginx"
export TICKETD_E2E_ADMIN_EMAIL="$TICKETD_ADMIN_EMAIL" TICKETD_E2E_ADMIN_PASSWORD="$TICKETD_ADMIN_PASSWORD"
export TICKETD_CLUSTER_A_URL="http://127.0.0.1:$port_a" TICKETD_CLUSTER_B_URL="http://127.0.0.1:$port_b"
export TICKETD_CLUSTER_A_PID="$pid_a" TICKETD_CLUSTER_B_PID="$pid_b"
export TICKETD_CLUSTER_DATABASE_URL="$DATABASE_URL"
export TICKETD_CLUSTER_NGINX_ACCESS_LOG="$work/nginx-access.log"
cd frontend
[ -n "${TWO_PROCESS_SKIP_JOURNEY:-}" ] || npx vitest run --config vitest.e2e.config.ts e2e/journey.spec.ts e2e/assets.spec.ts
npx vitest run --config vitest.cluster.config.ts
