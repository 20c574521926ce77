#!/usr/bin/env bash
# Load benchmarks on loopback against a release `ticketd serve` (bounded: each run 15 s).
#   benches/load.sh create      ticket creation over HTTP (wrk, 4 connections) + pgbench ceiling
#   benches/load.sh read N      seed N tickets, rebuild the read model, list/search load, lag at 500/s
#   benches/load.sh rebuild N   seed N tickets, then the tickets rebuild's rate ($REBUILD_RUNS times,
#                               default 2) beside the log's raw key-order stream rate and the
#                               pg-ceiling, from the same run (no server running)
#   benches/load.sh reports N   seed N tickets, rebuild the read models, dashboard p95 (cached and
#                               uncached), export rows/s with the server's memory sampled
# Uses its own database ($BENCH_DB, default ticketd_bench) on $PGURL (default the local server).
# KEEP_DB=1 reuses an already seeded database; BENCH_PORT (default 18080) is where it serves;
# BENCH_SQL runs on the database after migrating (a schema variant, see below).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-create}
n=${2:-1000000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
BENCH_DB=${BENCH_DB:-ticketd_bench}
DB="$PGURL/$BENCH_DB"
PORT=${BENCH_PORT:-18080}
BASE="http://127.0.0.1:$PORT"
# TICKETD_BIN runs another build (a baseline); else this tree's release build.
if [ -z "${TICKETD_BIN:-}" ]; then
  cargo build --release --bin ticketd >/dev/null
fi
BIN=${TICKETD_BIN:-${CARGO_TARGET_DIR:-target}/release/ticketd}

if [ "$mode" = create ] || [ "${KEEP_DB:-0}" != 1 ]; then
  psql -X -q "$PGURL/postgres" -c "drop database if exists $BENCH_DB" >/dev/null
fi
export DATABASE_URL=$DB SECRET_KEY=bench-secret-key-0123456789abcdefghijklmnop
$BIN migrate >/dev/null 2>&1
# BENCH_SQL: statements run on the database after migrating, to set a schema variant (an index
# added or dropped) beside the same build: the two sides of a comparison differ in that alone.
if [ -n "${BENCH_SQL:-}" ]; then psql -X -q "$DB" -c "$BENCH_SQL" >/dev/null; fi
if [ "$mode" != create ] && [ "${KEEP_DB:-0}" != 1 ]; then
  echo "== seeding $n tickets"
  /usr/bin/time -f "seed wall=%es maxrss=%MKiB" $BIN seed --tickets "$n"
  echo "== rebuilding the tickets read model"
  $BIN projections rebuild tickets
  if [ "$mode" = reports ]; then
    echo "== rebuilding the reports read model"
    /usr/bin/time -f "rebuild reports wall=%es maxrss=%MKiB" $BIN projections rebuild reports
  fi
  psql -X -q "$DB" -c 'vacuum analyze' >/dev/null
fi

if [ "$mode" = rebuild ]; then
  # The machine-relative figures: how fast PostgreSQL alone streams the whole log in key order to
  # a client (binary COPY to /dev/null: the rebuild's first read with no work on the rows), and
  # its command ceiling; each rebuild's rate is printed as a share of the stream rate.
  events=$(psql -X -At "$DB" -c 'select count(*) from events')
  stream_once() { { /usr/bin/time -f '%e' psql -X -q "$DB" -c "\copy (select transaction_id::text, global_position,
      aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at
      from events order by transaction_id, global_position) to '/dev/null' (format binary)"; } 2>&1 | tail -n 1; }
  # The faster of two streams: the first may read what the second finds cached.
  stream=$(printf '%s\n' "$(stream_once)" "$(stream_once)" | sort -n | head -n 1)
  raw=$(python3 -c "import sys; print(round(int(sys.argv[1]) / float(sys.argv[2])))" "$events" "$stream")
  echo "raw key-order stream: $events events in ${stream}s = $raw rows/s"
  { bash ../shared/bench/pg-ceiling/run.sh 4 15 2>/dev/null \
      || bash "$(dirname "$0")/../../shared/bench/pg-ceiling/run.sh" 4 15; } | grep 'pg-ceiling command'
  for run in $(seq 1 "${REBUILD_RUNS:-2}"); do
    line=$($BIN projections rebuild tickets 2>/dev/null | grep '^rebuilt tickets')
    rate=$(echo "$line" | sed -E 's/.*\(([0-9]+) events\/s\).*/\1/')
    echo "$line"
    python3 -c "import sys; r,w=int(sys.argv[1]),int(sys.argv[2]); print(f'rebuild {sys.argv[3]}: {r} events/s = {r/w:.2f} of the raw stream rate')" "$rate" "$raw" "$run"
  done
  exit 0
fi

if [ "$mode" = read ] && [ "${FAST_FORWARD_OTHERS:-1}" = 1 ]; then
  # Isolate the ticket read model: the other projections (and the webhook channel, which has
  # no subscription here) start at the head of the log instead of catching up over millions of
  # seeded events while we measure.
  psql -X -q "$DB" -c "insert into projection_checkpoints (projection, last_txid, last_position)
      select p, (select transaction_id from events order by transaction_id desc, global_position desc limit 1),
             (select max(global_position) from events)
        from unnest(array['comments','attachments','approvals','approval_saga','notifications','reports','webhooks']) p
      on conflict (projection) do update set last_txid = excluded.last_txid, last_position = excluded.last_position
      where projection_checkpoints.projection <> 'tickets'" >/dev/null
fi
TICKETD_ADDR=127.0.0.1:$PORT TICKETD_ADMIN_EMAIL=bench@example.com TICKETD_ADMIN_PASSWORD=bench-password-1 \
  RUST_LOG=warn $BIN serve & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -s -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
export TOKEN

case "$mode" in
  create)
    # The ceiling runs just before and just after the load, and the ratio is taken against
    # their mean: on a shared machine the ceiling itself drifts by 10-20 % within minutes.
    ceiling() {
      echo "== PostgreSQL's own ceiling for the same shapes (4 clients, 15 s), $1 the load" >&2
      { bash ../shared/bench/pg-ceiling/run.sh 4 15 2>/dev/null \
          || bash "$(dirname "$0")/../../shared/bench/pg-ceiling/run.sh" 4 15; } | tee /dev/stderr \
        | awk '/pg-ceiling command/ {sub("tps=", "", $5); print $5}'
    }
    before=$(ceiling before)
    echo "== POST /api/v1/tickets/ (4 connections, 15 s, durable commits)"
    # CPU from /proc over the run: the server's process, and every PostgreSQL process
    # (backends, WAL writer, checkpointer, autovacuum), in clock ticks.
    ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
    pg_ticks() { local t=0; for p in $(pgrep -x postgres); do t=$((t + $(ticks "$p"))); done; echo $t; }
    s0=$(ticks $pid); p0=$(pg_ticks); c0=$(psql -X -q -t -A "$DB" -c "select count(*) from events where event_type = 'TicketOpened'")
    wrk -t2 -c4 -d15s --latency -s benches/create_ticket.lua "$BASE" | grep -E "requests=|Non-2xx"
    sleep 1 # the projections finish the last batch
    s1=$(ticks $pid); p1=$(pg_ticks); c1=$(psql -X -q -t -A "$DB" -c "select count(*) from events where event_type = 'TicketOpened'")
    hz=$(getconf CLK_TCK)
    python3 -c "import sys; s,p,n,hz=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]); print(f'cpu per create: server={s/hz/n*1e3:.3f}ms postgres={p/hz/n*1e3:.3f}ms over {n} creates')" \
      $((s1 - s0)) $((p1 - p0)) $((c1 - c0)) "$hz"
    echo "server VmHWM=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)KiB"
    after=$(ceiling after)
    python3 -c "import sys; n,s,b,a=map(float,sys.argv[1:]); c=(b+a)/2; print(f'creates/s={n/s:.0f} ceiling command tps: before={b:.0f} after={a:.0f} mean={c:.0f} ratio={n/s/c:.2f}')" \
      $((c1 - c0)) 15 "$before" "$after"
    ;;
  read)
    echo "== GET /api/v1/tickets/ (4 connections, 15 s)"
    wrk -t2 -c4 -d15s --latency -s benches/list_tickets.lua "$BASE" | grep -E "requests=|Non-2xx"
    echo "== GET /api/v1/tickets/search?q= (4 connections, 15 s)"
    wrk -t2 -c4 -d15s --latency -s benches/search_tickets.lua "$BASE" | grep -E "requests=|Non-2xx"
    echo "== projection lag at 500 commands/s (15 s)"
    BENCH_BASE=$BASE BENCH_TOKEN=$TOKEN BENCH_RATE=500 BENCH_SECONDS=15 cargo bench --bench projection_lag 2>/dev/null | grep projection_lag
    ;;
  reports)
    hwm() { awk '/VmHWM/ {print $2}' "/proc/$pid/status"; }
    rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
    psql -X -q -t -A "$DB" -c "select 'tickets in the read model: ' || count(*) from rm_report_tickets where not deleted"
    curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/reports/dashboard" >/dev/null
    echo "== GET /api/v1/reports/dashboard (4 connections, 15 s; cache: 5 s TTL, keyed by the checkpoint)"
    wrk -t2 -c4 -d15s --latency -s benches/dashboard.lua "$BASE" | grep -E "requests=|Non-2xx"
    echo "== GET /api/v1/reports/dashboard?at_risk_minutes=<varied> (4 connections, 15 s; every request computed)"
    VARY=1 wrk -t2 -c4 -d15s --latency -s benches/dashboard.lua "$BASE" | grep -E "requests=|Non-2xx"
    echo "== the same, 1 connection (the latency of one computation)"
    VARY=1 wrk -t1 -c1 -d15s --latency -s benches/dashboard.lua "$BASE" | grep -E "requests=|Non-2xx"
    echo "== GET /api/v1/reports/dashboard (4 connections, 15 s) while 2 connections create tickets"
    wrk -t1 -c2 -d17s -s benches/create_ticket.lua "$BASE/api/v1/tickets/" > /tmp/ticketd-writers.txt &
    writers=$!
    sleep 1
    wrk -t2 -c4 -d15s --latency -s benches/dashboard.lua "$BASE" | grep -E "requests=|Non-2xx"
    wait $writers
    echo "writers: $(grep requests= /tmp/ticketd-writers.txt)"
    for format in csv json; do
      echo "== GET /api/v1/reports/export?format=$format (every ticket; server memory sampled every 100 ms)"
      before_hwm=$(hwm); before_rss=$(rss); peak=$before_rss
      start=$(date +%s.%N)
      curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/reports/export?format=$format" -o /tmp/ticketd-export.$format &
      cpid=$!
      while kill -0 $cpid 2>/dev/null; do r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.1; done
      wait $cpid
      end=$(date +%s.%N)
      if [ $format = csv ]; then rows=$(($(wc -l < /tmp/ticketd-export.csv) - 1)); else rows=$(grep -c '^{' /tmp/ticketd-export.json); fi
      bytes=$(stat -c %s /tmp/ticketd-export.$format)
      python3 -c "import sys; r,b,s,e=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4]); d=e-s; print(f'rows={r} bytes={b} seconds={d:.2f} rows_per_s={r/d:.0f} MB_per_s={b/d/1e6:.1f}')" "$rows" "$bytes" "$start" "$end"
      echo "server VmRSS before=${before_rss}KiB peak_during=${peak}KiB; VmHWM before=${before_hwm}KiB after=$(hwm)KiB"
      rm -f /tmp/ticketd-export.$format
    done
    ;;
esac
