#!/usr/bin/env bash
# One vs two ticketd processes behind nginx (the deploy/ template), side by side in one run on
# one fresh database: creates/s and list latency with wrk through nginx. Figures: docs/scaling.md.
# Usage: TICKETD_BIN=target/release/ticketd benches/scaling.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
conns=${2:-8}
bin=${TICKETD_BIN:-${CARGO_TARGET_DIR:-target}/release/ticketd}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
database="ticketd_scaling_$$"
work=$(mktemp -d /tmp/ticketd-scaling.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true;
      psql -q "$pg/postgres" -c "drop database if exists $database with (force)" >/dev/null 2>&1; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

export DATABASE_URL="$pg/$database" SECRET_KEY=scaling-secret-key-0123456789abcdefghijkl
export TICKETD_ADMIN_EMAIL=bench@example.com TICKETD_ADMIN_PASSWORD=bench-password-1
export TICKETD_DATA_DIR="$work/data" TICKETD_TRUSTED_PROXIES=127.0.0.1 RUST_LOG=warn
mkdir -p "$TICKETD_DATA_DIR"
ports=()
for name in a b; do
  port=$(free_port); ports+=("$port")
  TICKETD_ADDR=127.0.0.1:$port "$bin" serve >"$work/$name.log" 2>&1 & pids+=($!)
  up "http://127.0.0.1:$port/healthz"
done

start_nginx() { # name, upstream servers -> sets $nginx_port
  local dir="$work/nginx-$1" port; port=$(free_port)
  mkdir -p "$dir/conf.d" "$dir/temp"
  TICKETD_UPSTREAM_SERVERS="$2" NGINX_LISTEN="127.0.0.1:$port" NGINX_CLIENT_MAX_BODY_SIZE=26m \
    envsubst '${TICKETD_UPSTREAM_SERVERS} ${NGINX_LISTEN} ${NGINX_CLIENT_MAX_BODY_SIZE}' \
    <deploy/nginx/templates/default.conf.template >"$dir/conf.d/default.conf"
  { [ "$(id -u)" = 0 ] && echo "user root;"
    cat <<CONF
worker_processes 1;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http { include /etc/nginx/mime.types; access_log off; client_body_temp_path $dir/temp/b; proxy_temp_path $dir/temp/p;
       fastcgi_temp_path $dir/temp/f; uwsgi_temp_path $dir/temp/u; scgi_temp_path $dir/temp/s; include $dir/conf.d/*.conf; }
CONF
  } >"$dir/nginx.conf"
  nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' >/dev/null 2>&1 & pids+=($!)
  up "http://127.0.0.1:$port/healthz"
  nginx_port=$port
}
start_nginx one "server 127.0.0.1:${ports[0]};"; one=$nginx_port
start_nginx two "server 127.0.0.1:${ports[0]}; server 127.0.0.1:${ports[1]};"; two=$nginx_port

TOKEN=$(curl -s -XPOST "http://127.0.0.1:$one/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
export TOKEN
# Some tickets to list before the first measurement.
wrk -t2 -c4 -d3s -s benches/create_ticket.lua "http://127.0.0.1:$one" >/dev/null

echo "machine: $(nproc) cores; $conns connections, ${seconds} s each; wrk, nginx and PostgreSQL on the same machine"
for setup in "1 process:$one" "2 processes:$two"; do
  label=${setup%%:*}; port=${setup##*:}
  create=$(wrk -t2 -c"$conns" -d"${seconds}s" -s benches/create_ticket.lua "http://127.0.0.1:$port" | grep requests=)
  list=$(wrk -t2 -c"$conns" -d"${seconds}s" -s benches/list_tickets.lua "http://127.0.0.1:$port" | grep requests=)
  echo "$label  create: $create"
  echo "$label  list:   $list"
done
echo "tickets in the database: $(psql -X -At "$DATABASE_URL" -c 'select count(*) from rm_tickets' 2>/dev/null || echo '?')"
