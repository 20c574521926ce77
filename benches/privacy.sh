#!/usr/bin/env bash
# What sealing personal fields costs (issue 19), measured in one run on this machine:
#   1. ticket creation over HTTP (wrk, 4 connections, $SECONDS_EACH s per run), alternating a
#      baseline build without encryption ($BASE_BIN, e.g. main's release build) and this tree's
#      release build ($BIN), $ROUNDS rounds each;
#   2. `ticketd projections rebuild tickets` over $N seeded tickets written in plaintext
#      (`seed --plaintext`, as before encryption) and over the same number sealed (`seed`),
#      alternating, $ROUNDS rounds each (the baseline build rebuilds the plaintext log too).
# Usage: BASE_BIN=/path/to/baseline/ticketd BIN=/path/to/ticketd benches/privacy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/ticketd}
BASE_BIN=${BASE_BIN:?set BASE_BIN to a build without encryption}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${BENCH_PORT:-18090}
N=${N:-20000}
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-10}
export SECRET_KEY=bench-secret-key-0123456789abcdefghijklmnop RUST_LOG=warn

fresh_db() {
  psql -X -q "$PGURL/postgres" -c "drop database if exists $1" >/dev/null
  DATABASE_URL="$PGURL/$1" $2 migrate >/dev/null 2>&1
}

create_run() { # binary label
  local db=ticketd_privacy_create
  fresh_db $db "$1"
  DATABASE_URL="$PGURL/$db" TICKETD_ADDR=127.0.0.1:$PORT TICKETD_ADMIN_EMAIL=bench@example.com \
    TICKETD_ADMIN_PASSWORD=bench-password-1 $1 serve & local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
  TOKEN=$(curl -s -XPOST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
  export TOKEN
  echo "create $2: $(wrk -t2 -c4 -d${SECONDS_EACH}s --latency -s benches/create_ticket.lua "http://127.0.0.1:$PORT" | grep requests=)"
  kill $pid; wait $pid 2>/dev/null || true
}

rebuild_run() { # binary db label
  local out
  out=$(DATABASE_URL="$PGURL/$2" $1 projections rebuild tickets)
  echo "rebuild $3: $out"
}

echo "== creation over HTTP, $ROUNDS rounds of ${SECONDS_EACH}s each"
for _ in $(seq 1 "$ROUNDS"); do
  create_run "$BASE_BIN" "without encryption (baseline build)"
  create_run "$BIN" "with encryption"
done

echo "== seeding $N tickets three times: plaintext by each build, and sealed"
# The baseline knows fewer migrations: it keeps a database of its own.
fresh_db ticketd_privacy_base "$BASE_BIN"
DATABASE_URL="$PGURL/ticketd_privacy_base" $BASE_BIN seed --tickets "$N"
fresh_db ticketd_privacy_plain "$BIN"
DATABASE_URL="$PGURL/ticketd_privacy_plain" $BIN seed --tickets "$N" --plaintext
fresh_db ticketd_privacy_sealed "$BIN"
DATABASE_URL="$PGURL/ticketd_privacy_sealed" $BIN seed --tickets "$N"
echo "== rebuilding the tickets read model, $ROUNDS rounds"
for _ in $(seq 1 "$ROUNDS"); do
  rebuild_run "$BASE_BIN" ticketd_privacy_base "plaintext log, baseline build"
  rebuild_run "$BIN" ticketd_privacy_plain "plaintext log, this build"
  rebuild_run "$BIN" ticketd_privacy_sealed "sealed log, this build"
done
for db in create base plain sealed; do
  psql -X -q "$PGURL/postgres" -c "drop database if exists ticketd_privacy_$db" >/dev/null
done
