#!/usr/bin/env bash
# The agent's queue at scale, on loopback against a release `ticketd serve` (each run 15 s):
#   benches/views.sh [N]   seed N tickets (default 1,000,000) through the event log, rebuild the
#                          tickets read model, save 16 personal views beside the desk's 4 shared
#                          ones, then measure GET /api/v1/views/counts (20 views; 1 and 4
#                          connections) and ticket lists sorted by `sla_due` (1 and 4 connections).
# Uses its own database ($BENCH_DB, default ticketd_bench_views) on $PGURL (default the local
# server). KEEP_DB=1 reuses an already seeded database; BENCH_PORT (default 18391) is where it
# serves; TICKETD_BIN runs another build (default: this tree's release build).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
BENCH_DB=${BENCH_DB:-ticketd_bench_views}
DB="$PGURL/$BENCH_DB"
PORT=${BENCH_PORT:-18391}
BASE="http://127.0.0.1:$PORT"
if [ -z "${TICKETD_BIN:-}" ]; then
  cargo build --release --bin ticketd >/dev/null
fi
BIN=${TICKETD_BIN:-${CARGO_TARGET_DIR:-target}/release/ticketd}
export DATABASE_URL=$DB SECRET_KEY=bench-secret-key-0123456789abcdefghijklmnop

if [ "${KEEP_DB:-0}" != 1 ]; then
  psql -X -q "$PGURL/postgres" -c "drop database if exists $BENCH_DB" >/dev/null
  $BIN migrate >/dev/null 2>&1
  echo "== seeding $n tickets through the event log"
  /usr/bin/time -f "seed wall=%es maxrss=%MKiB" $BIN seed --tickets "$n"
  echo "== rebuilding the tickets read model (with every ticket's SLA clock)"
  /usr/bin/time -f "rebuild tickets wall=%es maxrss=%MKiB" $BIN projections rebuild tickets
  # Only the ticket list is measured: the other projections start at the head of the log
  # instead of catching up over millions of seeded events while we measure.
  psql -X -q "$DB" -c "insert into projection_checkpoints (projection, last_txid, last_position)
      select p, (select transaction_id from events order by transaction_id desc, global_position desc limit 1),
             (select max(global_position) from events)
        from unnest(array['comments','attachments','approvals','approval_saga','notifications','reports']) p
      on conflict (projection) do update set last_txid = excluded.last_txid, last_position = excluded.last_position
      where projection_checkpoints.projection <> 'tickets'" >/dev/null
  psql -X -q "$DB" -c 'vacuum analyze' >/dev/null
else
  $BIN migrate >/dev/null 2>&1
fi

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
export TOKEN
sql() { psql -X -q -t -A "$DB" -c "$1"; }
agents=($(sql "select id from users where email like 'agent%@seed.ticketd.local' order by id limit 3"))
requester=$(sql "select id from users where email like 'requester%@seed.ticketd.local' order by id limit 1")
export AGENT=${agents[0]}
sql "select 'tickets in the list: ' || count(*) || ', open: ' || count(*) filter (where status in ('open','in_progress','pending')) from rm_tickets where not deleted"

# 16 personal views beside the desk's four shared ones: the queue's usual filters (status,
# priority, type, assignee, SLA state), one requester's tickets and one tag.
sql "delete from saved_views where not shared" >/dev/null
open='open,in_progress,pending'
for filters in \
  '{"status":"open"}' '{"status":"in_progress"}' '{"status":"pending"}' '{"status":"resolved"}' \
  "{\"priority\":\"critical\",\"status\":\"$open\"}" '{"priority":"high,critical","sla":"breached"}' \
  '{"type":"incident","status":"open"}' '{"type":"change_request"}' \
  "{\"assignee_id\":\"${agents[0]}\",\"status\":\"$open\"}" "{\"assignee_id\":\"${agents[1]}\",\"status\":\"$open\"}" \
  "{\"assignee_id\":\"${agents[2]}\",\"sla\":\"breached\"}" '{"unassigned":true,"priority":"critical"}' \
  '{"sla":"warning","priority":"high"}' '{"assignee_id":"me"}' \
  "{\"requester_id\":$requester}" "{\"tag\":\"vpn\",\"status\":\"$open\"}"; do
  curl -sf -XPOST "$BASE/api/v1/views/" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"name\":\"bench\",\"filters\":$filters,\"sort\":\"sla_due\"}" >/dev/null
done
echo "== the counts of the 20 views"
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/views/counts" | python3 -c \
  'import sys,json; c=json.load(sys.stdin); print(len(c), "views:", [v["count"] for v in c])'
echo "== GET /api/v1/views/counts (1 connection, 15 s)"
wrk -t1 -c1 -d15s -s benches/view_counts.lua "$BASE" | grep -E "requests=|Non-2xx"
echo "== GET /api/v1/views/counts (4 connections, 15 s)"
wrk -t2 -c4 -d15s -s benches/view_counts.lua "$BASE" | grep -E "requests=|Non-2xx"
echo "== GET /api/v1/tickets/?sort=sla_due, the queue's filters (1 connection, 15 s)"
wrk -t1 -c1 -d15s -s benches/sla_list.lua "$BASE" | grep -E "requests=|Non-2xx"
echo "== the same, 4 connections"
wrk -t2 -c4 -d15s -s benches/sla_list.lua "$BASE" | grep -E "requests=|Non-2xx"
