#!/usr/bin/env bash
# Audit benchmarks (release build, a dedicated database):
#   1. `ticketd audit verify` over what `ticketd seed --tickets $TICKETS` writes (≈ 4.6 events
#      per ticket: 250,000 tickets ≈ 1,000,000 events), with no seal, then with a seal;
#   2. `ticketd replay ticket` of a ticket with 1,000 events (in process, and whole process).
# REPLAY_ONLY=1 reuses the database of a previous run and measures only the replay.
# Usage: benches/audit.sh            (TICKETS, BENCH_DB, BENCH_SERVER override the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."

TICKETS=${TICKETS:-250000}
SERVER=${BENCH_SERVER:-postgres://postgres@127.0.0.1:5432}
DB=${BENCH_DB:-ticketd_audit_bench}
export DATABASE_URL="$SERVER/$DB"
export RUST_LOG=${RUST_LOG:-warn}
BIN=target/release/ticketd
ms() { date +%s%N | awk '{ printf "%d", $1 / 1000000 }'; }

cargo build --release --quiet --bin ticketd
if [ -n "${REPLAY_ONLY:-}" ]; then
  LONG=$(psql -qAt "$DATABASE_URL" -c "select aggregate_id from events where aggregate_type = 'ticket' and sequence = 1000 limit 1")
else
psql -q "$SERVER/postgres" -c "drop database if exists $DB" -c "create database $DB"
$BIN migrate
t0=$(ms); $BIN seed --tickets "$TICKETS"; t1=$(ms)
echo "seed: $((t1 - t0)) ms"

# One ticket with 1,000 events: opened, then updates and comments (some internal).
LONG=$(psql -qAt "$DATABASE_URL" <<'SQL'
with t as (select nextval('ticket_id_seq') as id), u as (select min(id) as uid from users)
insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
select 'ticket', t.id::text, g,
       case when g = 1 then 'TicketOpened' when g % 2 = 0 then 'TicketUpdated' else 'CommentAdded' end,
       '1.0',
       case when g = 1 then jsonb_build_object('TicketOpened', jsonb_build_object(
                'id', t.id, 'requester_id', u.uid, 'title', 'Bench ticket', 'description', 'A long history',
                'priority', 'medium', 'type', 'issue', 'tags', '[]'::jsonb, 'item_ids', '[]'::jsonb, 'at', now()))
            when g % 2 = 0 then jsonb_build_object('TicketUpdated', jsonb_build_object(
                'changes', jsonb_build_object('title', 'Bench ticket, revision ' || g), 'at', now()))
            else jsonb_build_object('CommentAdded', jsonb_build_object(
                'comment_id', gen_random_uuid(), 'author_id', u.uid, 'content', 'Comment number ' || g,
                'is_internal', g % 3 = 0, 'parent_id', null, 'mentions', '[]'::jsonb, 'at', now()))
       end,
       jsonb_build_object('user_id', u.uid::text, 'request_id', 'bench', 'client_ip', '127.0.0.1', 'user_agent', 'bench')
  from t, u, generate_series(1, 1000) g
returning aggregate_id;
SQL
)
LONG=$(echo "$LONG" | head -1)
psql -qAt "$DATABASE_URL" -c "vacuum analyze events" >/dev/null
echo "events: $(psql -qAt "$DATABASE_URL" -c 'select count(*) from events'), long ticket: $LONG"

echo "--- audit verify (no seal; default jobs = one per CPU, at least 2)"
$BIN audit verify
echo "--- audit verify --jobs 1 (no seal)"
$BIN audit verify --jobs 1
echo "--- audit seal"
t0=$(ms); $BIN audit seal > /tmp/ticketd-bench-seal.json; t1=$(ms)
echo "seal: $((t1 - t0)) ms ($(grep -o '"events": [0-9]*' /tmp/ticketd-bench-seal.json))"
echo "--- audit verify (1 stored seal + the same seal from a file)"
$BIN audit verify --seal /tmp/ticketd-bench-seal.json
fi

echo "--- replay ticket $LONG (1,000 events), 20 runs"
$BIN replay ticket "$LONG" --format json > /dev/null
walls=(); inside=()
for _ in $(seq 20); do
  t0=$(date +%s%N)
  log=$(NO_COLOR=1 RUST_LOG=ticketd::replay=debug $BIN replay ticket "$LONG" --format json 2>&1 >/dev/null)
  t1=$(date +%s%N)
  walls+=($(( (t1 - t0) / 1000 )))
  inside+=($(echo "$log" | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'total_ms=[0-9.]*' | cut -d= -f2 | awk '{ printf "%d", $1 * 1000 }'))
done
stats() { sort -n | awk -v what="$1" '{ a[NR] = $1 } END { printf "%s: min %.1f ms, median %.1f ms, max %.1f ms\n", what, a[1] / 1000, a[int((NR + 1) / 2)] / 1000, a[NR] / 1000 }'; }
printf '%s\n' "${inside[@]}" | stats "replay, in process (connect + read + fold + print)"
printf '%s\n' "${walls[@]}" | stats "replay, whole process (wall clock)"
t0=$(date +%s%N); $BIN replay ticket "$LONG" > /dev/null; t1=$(date +%s%N)
echo "replay (table format), whole process: $(( (t1 - t0) / 1000000 )) ms"
