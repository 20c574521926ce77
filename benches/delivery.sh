#!/usr/bin/env bash
# Delivery lag per channel at a steady command rate, against a release `ticketd serve` with all
# three channels on, each to a real receiver on loopback: e-mail to an SMTP server (aiosmtpd),
# webhooks to an HTTP receiver, the feed to NATS JetStream on 127.0.0.1:4222.
#   benches/delivery.sh [RATE] [SECONDS]     (default 200 commands/s for 15 s)
# Every command is a public reply by an agent on one of 50 tickets of one requester: it makes
# one e-mail (to the requester), one webhook delivery (comment.created) and one NATS message.
# The lag of a delivery is from its event's commit (`recorded_at`) to the sender recording it
# delivered (`delivered_at`), so it spans the projection, the outbox, the sender and the
# receiver's answer. The creation rate beside PostgreSQL's ceiling is benches/load.sh create.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-200}
seconds=${2:-15}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
BENCH_DB=${BENCH_DB:-ticketd_bench_delivery}
DB="$PGURL/$BENCH_DB"
PORT=${BENCH_PORT:-18081}
BASE="http://127.0.0.1:$PORT"
cargo build --release --bin ticketd >/dev/null
BIN=${TICKETD_BIN:-${CARGO_TARGET_DIR:-target}/release/ticketd}

venv=.venv-test
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd>=1.4,<2'
fi
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
smtp_port=$(free_port)
hook_port=$(free_port)
tag=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$venv/bin/python" - "$tag" <<'PY' 2>/dev/null || true
import asyncio, sys
async def main():
    r, w = await asyncio.open_connection("127.0.0.1", 4222)
    await r.readline()
    w.write(f"CONNECT {{}}\r\nPUB $JS.API.STREAM.DELETE.BENCH{sys.argv[1].upper()} 0\r\n\r\nPING\r\n".encode())
    await w.drain(); await asyncio.sleep(0.3); w.close()
asyncio.run(main())
PY
  [ "${KEEP_DB:-0}" = 1 ] || psql -X -q "$PGURL/postgres" -c "drop database if exists $BENCH_DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/mail"
"$venv/bin/python" tests/support/smtp_sink.py 127.0.0.1 "$smtp_port" "$work/mail" count & pids+=($!)
"$venv/bin/python" - "$hook_port" <<'PY' & pids+=($!)
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as receivers behind a web server answer
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *args): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY

psql -X -q "$PGURL/postgres" -c "drop database if exists $BENCH_DB with (force)" >/dev/null
export DATABASE_URL=$DB SECRET_KEY=bench-secret-key-0123456789abcdefghijklmnop
$BIN migrate >/dev/null 2>&1
for _ in $(seq 1 50); do [ -f "$work/mail/ready" ] && break; sleep 0.1; done
TICKETD_ADDR=127.0.0.1:$PORT TICKETD_ADMIN_EMAIL=bench@example.com TICKETD_ADMIN_PASSWORD=bench-password-1 \
  TICKETD_SMTP_URL="smtp://127.0.0.1:$smtp_port" TICKETD_MAIL_FROM="Desk <desk@example.com>" \
  TICKETD_NATS_URL=nats://127.0.0.1:4222 TICKETD_NATS_PREFIX="bench$tag" TICKETD_NATS_STREAM="BENCH${tag^^}" \
  TICKETD_WEBHOOK_ALLOW_LOOPBACK=true RUST_LOG=warn $BIN serve & pid=$!
pids+=($pid)
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
api() { curl -sf -H 'content-type: application/json' -H "Authorization: Bearer $1" "${@:2}"; }
login() {
  curl -sf -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])'
}
ADMIN=$(login bench@example.com bench-password-1)
api "$ADMIN" -XPOST "$BASE/api/v1/users/" \
  -d '{"email":"requester@example.com","password":"requester-pass-1","full_name":"Rita Requester","role":"requester"}' >/dev/null
REQ=$(login requester@example.com requester-pass-1)
tickets=()
for i in $(seq 1 50); do
  tickets+=("$(api "$REQ" -XPOST "$BASE/api/v1/tickets/" \
    -d "{\"title\":\"Bench ticket $i\",\"description\":\"d\",\"priority\":\"medium\",\"type\":\"issue\"}" \
    | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')")
done
api "$ADMIN" -XPOST "$BASE/api/v1/webhooks/" \
  -d "{\"url\":\"http://127.0.0.1:$hook_port/hook\",\"events\":[\"comment.created\"]}" >/dev/null
sleep 2
start=$(psql -X -q -t -A "$DB" -c "select now()")

echo "== $rate public replies/s for ${seconds}s, every channel on"
BENCH_BASE=$BASE BENCH_TOKEN=$ADMIN BENCH_RATE=$rate BENCH_SECONDS=$seconds \
  BENCH_COMMENT_ON=$(IFS=,; echo "${tickets[*]}") \
  cargo bench --bench projection_lag 2>/dev/null | grep projection_lag
for _ in $(seq 1 120); do
  left=$(psql -X -q -t -A "$DB" -c "select count(*) from deliveries where status = 'pending'")
  [ "$left" = 0 ] && break
  sleep 0.5
done
echo "== delivery lag per channel (event commit -> delivered), events since the run began"
psql -X -q "$DB" -c "
  select d.channel, count(*) as delivered,
         round(percentile_cont(0.50) within group (order by extract(epoch from d.delivered_at - e.recorded_at))::numeric * 1000, 1) as p50_ms,
         round(percentile_cont(0.95) within group (order by extract(epoch from d.delivered_at - e.recorded_at))::numeric * 1000, 1) as p95_ms,
         round(percentile_cont(0.99) within group (order by extract(epoch from d.delivered_at - e.recorded_at))::numeric * 1000, 1) as p99_ms,
         round(max(extract(epoch from d.delivered_at - e.recorded_at))::numeric * 1000, 1) as max_ms
    from deliveries d join events e on e.global_position = d.event_position
   where d.status = 'delivered' and e.recorded_at >= '$start' and e.event_type = 'CommentAdded'
   group by d.channel order by d.channel"
psql -X -q -t -A "$DB" -c "select 'not delivered: ' || count(*) from deliveries where status <> 'delivered'"
echo "e-mails received by the SMTP server: $(wc -l < "$work/mail/received")"
