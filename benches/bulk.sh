#!/usr/bin/env bash
# Bulk actions on loopback against a release `ticketd serve`: opens 1,000 tickets through the
# API, then times POST /api/v1/tickets/bulk on 100 of them at a time (assign, tag, an internal
# note, and a move to in_progress: every ticket its own command), ten rounds on fresh tickets,
# and prints each round's wall time and the median.
#   benches/bulk.sh
# Uses its own database ($BENCH_DB, default ticketd_bench_bulk) on $PGURL (default the local
# server); BENCH_PORT (default 18392) is where it serves; TICKETD_BIN runs another build.
set -euo pipefail
cd "$(dirname "$0")/.."
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
BENCH_DB=${BENCH_DB:-ticketd_bench_bulk}
PORT=${BENCH_PORT:-18392}
BASE="http://127.0.0.1:$PORT"
if [ -z "${TICKETD_BIN:-}" ]; then
  cargo build --release --bin ticketd >/dev/null
fi
BIN=${TICKETD_BIN:-${CARGO_TARGET_DIR:-target}/release/ticketd}
psql -X -q "$PGURL/postgres" -c "drop database if exists $BENCH_DB" >/dev/null
export DATABASE_URL=$PGURL/$BENCH_DB SECRET_KEY=bench-secret-key-0123456789abcdefghijklmnop
$BIN migrate >/dev/null 2>&1
if curl -s -o /dev/null "$BASE/healthz"; then
  echo "something already serves on port $PORT; set BENCH_PORT" >&2
  exit 1
fi
TICKETD_ADDR=127.0.0.1:$PORT TICKETD_ADMIN_EMAIL=bench@example.com TICKETD_ADMIN_PASSWORD=bench-password-1 \
  RUST_LOG=warn $BIN serve & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -s -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
export BASE TOKEN
python3 - <<'PY'
import json, os, statistics, time, urllib.request

base, token = os.environ["BASE"], os.environ["TOKEN"]

def call(method, path, body):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

me = json.load(urllib.request.urlopen(urllib.request.Request(base + "/api/v1/auth/profile",
    headers={"Authorization": f"Bearer {token}"})))["id"]
ids = [call("POST", "/api/v1/tickets/", {"title": f"bulk bench {n}"})["id"] for n in range(1000)]
times = []
for round_ in range(10):
    batch = ids[round_ * 100:(round_ + 1) * 100]
    body = {"ticket_ids": batch, "changes": {"status": "in_progress", "assignee_id": me,
            "add_tags": ["bench"]}, "comment": {"content": "Bulk note", "is_internal": True}}
    t = time.perf_counter()
    results = call("POST", "/api/v1/tickets/bulk", body)["results"]
    times.append(time.perf_counter() - t)
    ok = sum(1 for r in results if r["status"] == 200)
    print(f"round {round_ + 1}: 100 tickets in {times[-1] * 1000:.0f} ms ({ok} changed)")
print(f"median bulk of 100 tickets: {statistics.median(times) * 1000:.0f} ms "
      f"({statistics.median(times) * 10:.1f} ms per ticket)")
PY
