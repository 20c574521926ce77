#!/usr/bin/env bash
# The cost of keeping the SPA open: `GET /api/v1/live` clients against one release `ticketd serve`
# on loopback (bounded: about 8 minutes).
#
#   benches/live.sh [CLIENTS] [PAIR_CLIENTS]     defaults 1000 and 200
#
# 1. Memory: the server's RSS before and after CLIENTS connections (each watching one ticket,
#    30 % staff with queue=true, presence renewed every 15 s), per client.
# 2. Throughput: five interleaved pairs of runs, each pair once without clients and once with
#    PAIR_CLIENTS connected: ticket creation (wrk, 4 connections, 10 s) and the ticket list
#    (wrk, 4 connections, 10 s). Medians of the five, and PostgreSQL transactions per created
#    ticket (xact_commit of the bench database over the creation run, presence renewals
#    counted apart).
#
# Each SSE client holds a socket: the server and this script raise the open-file limit
# (deployments must too: `ulimit -n` or systemd's LimitNOFILE).
# Uses its own database ($BENCH_DB, default ticketd_live_bench) on $PGURL.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-1000}
pair_clients=${2:-200}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
BENCH_DB=${BENCH_DB:-ticketd_live_bench}
DB="$PGURL/$BENCH_DB"
PORT=${BENCH_PORT:-18081}
BASE="http://127.0.0.1:$PORT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # as many as this shell may have
cargo build --release --bin ticketd >/dev/null
BIN=${CARGO_TARGET_DIR:-target}/release/ticketd
work=$(mktemp -d)

psql -X -q "$PGURL/postgres" -c "drop database if exists $BENCH_DB" >/dev/null
export DATABASE_URL=$DB SECRET_KEY=bench-secret-key-0123456789abcdefghijklmnop
$BIN migrate >/dev/null 2>&1

# 50 requesters and 10 agents.
echo '[' > "$work/users.json"
for i in $(seq 1 60); do
  role=requester; staff=false
  if [ "$i" -gt 50 ]; then role=agent; staff=true; fi
  TICKETD_NEW_USER_PASSWORD=bench-password-1 $BIN user create --email "live$i@example.com" \
    --full-name "Live User $i" --role $role >/dev/null
  sep=,; [ "$i" = 60 ] && sep=
  echo "{\"email\":\"live$i@example.com\",\"password\":\"bench-password-1\",\"staff\":$staff}$sep" >> "$work/users.json"
done
echo ']' >> "$work/users.json"

TICKETD_ADDR=127.0.0.1:$PORT TICKETD_MAX_CONNECTIONS=4096 TICKETD_ADMIN_EMAIL=bench@example.com TICKETD_ADMIN_PASSWORD=bench-password-1 \
  RUST_LOG=warn $BIN serve & pid=$!
cpid=
cleanup() {
  if [ -n "$cpid" ]; then kill "$cpid" 2>/dev/null || true; fi
  kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -s -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
export TOKEN
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
xacts() { psql -X -q -t -A "$PGURL/postgres" -c "select xact_commit from pg_stat_database where datname = '$BENCH_DB'"; }

# Starts N clients in the background and waits until they are connected.
start_clients() {
  : > "$work/clients.log"
  BASE=$BASE USERS="$work/users.json" CLIENTS=$1 node benches/live_clients.mjs > "$work/clients.log" 2>&1 & cpid=$!
  for _ in $(seq 1 600); do grep -q '^connected' "$work/clients.log" && break; sleep 0.5; done
  grep '^connected' "$work/clients.log"
}
stop_clients() {
  kill -TERM "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null || true; cpid=
  grep '^totals' "$work/clients.log" || true
}

# Warm the server up (tickets for the requesters, a list page, a little creation).
start_clients 10 >/dev/null; stop_clients >/dev/null
wrk -t1 -c2 -d3s -s benches/create_ticket.lua "$BASE" >/dev/null
sleep 2

echo "== memory: $clients /live clients"
before=$(rss)
start_clients "$clients"
sleep 20
after=$(rss)
echo "rss before=${before}KiB after=${after}KiB per_client=$(( (after - before) * 1024 / clients ))B"
stop_clients
sleep 3

run() { # label script -> prints rps
  wrk -t2 -c4 -d10s -s "benches/$2" "$BASE" | sed -n 's/.*rps=\([0-9.]*\).*/\1/p'
}
for pair in 1 2 3 4 5; do
  for mode in none clients; do
    if [ "$mode" = clients ]; then start_clients "$pair_clients" >/dev/null; sleep 2; fi
    x0=$(xacts); created=$(wrk -t2 -c4 -d10s -s benches/create_ticket.lua "$BASE" | sed -n 's/.*requests=\([0-9]*\).*/\1/p'); x1=$(xacts)
    create_rps=$(awk -v n="$created" 'BEGIN{printf "%.1f", n/10}')
    list_rps=$(run list list_tickets.lua)
    renewals=0
    if [ "$mode" = clients ]; then renewals=$(stop_clients | sed -n 's/.*renewals=\([0-9]*\).*/\1/p'); fi
    echo "pair=$pair mode=$mode create_rps=$create_rps list_rps=$list_rps xacts=$((x1 - x0)) created=$created presence_renewals=$renewals" | tee -a "$work/pairs"
  done
done
echo "== medians (5 pairs)"
for mode in none clients; do
  for key in create_rps list_rps; do
    printf '%s %s median=' "$mode" "$key"
    grep "mode=$mode " "$work/pairs" | sed -n "s/.*$key=\([0-9.]*\).*/\1/p" | sort -n | sed -n 3p
  done
  printf '%s xacts_per_created_ticket median=' "$mode"
  grep "mode=$mode " "$work/pairs" | awk '{for(i=1;i<=NF;i++){split($i,a,"=");v[a[1]]=a[2]} printf "%.3f\n", v["xacts"]/v["created"]}' | sort -n | sed -n 3p
done
