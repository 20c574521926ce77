#!/usr/bin/env bash
# Attachment streaming benchmark: starts a release `ticketd serve` on loopback, uploads and
# downloads a 20 MiB file with curl (3 rounds each), and samples the server's memory from
# /proc/<pid>/status. Before each transfer the peak (VmHWM) is reset to the current RSS
# (`echo 5 > /proc/<pid>/clear_refs`), so "growth" = peak during the transfer - RSS before.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash benches/attachments.sh
#
# Needs: curl, python3, sha256sum, a reachable PostgreSQL. Uses a fresh database
# (ticketd_bench_<pid>, dropped at the end) and a temporary data directory.
# Target (issue 4): >= 100 MiB/s each way, peak RSS growth < 10 MiB.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-20}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18087}
BASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB="ticketd_bench_$$"
DB_URL="${BASE_URL%/*}/$DB"
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
    local status=$?
    if (( status != 0 )) && [[ -f "$WORK/server.log" ]]; then
        echo "failed ($status); server log:" >&2
        tail -20 "$WORK/server.log" >&2
        psql "$DB_URL" -c "select projection, last_txid, last_position, status, error from projection_checkpoints" >&2 || true
    fi
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql "$BASE_URL" -qc "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet --bin ticketd

mem() { # VmRSS and VmHWM of the server, in KiB
    awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {print r, h}' "/proc/$SERVER_PID/status"
}
reset_peak() { echo 5 > "/proc/$SERVER_PID/clear_refs"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

DATABASE_URL="$DB_URL" TICKETD_ADDR="127.0.0.1:$PORT" TICKETD_DATA_DIR="$WORK/data" \
    SECRET_KEY="bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz" \
    TICKETD_ADMIN_EMAIL=bench@example.com TICKETD_ADMIN_PASSWORD="bench password 123" \
    TICKETD_MAX_UPLOAD_BYTES=$(( (SIZE_MIB + 5) * 1024 * 1024 )) RUST_LOG=warn \
    ./target/release/ticketd serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
    curl -sf "$URL/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

TOKEN=$(curl -sf "$URL/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench password 123"}' | json '["access_token"]')
AUTH="authorization: Bearer $TOKEN"
TICKET=$(curl -sf "$URL/api/v1/tickets/" -H "$AUTH" -H 'content-type: application/json' \
    -d '{"title":"bench","description":"attachments","priority":"low","type":"issue"}' | json '["id"]')

FILE="$WORK/payload.bin"
head -c $(( SIZE_MIB * 1024 * 1024 )) /dev/urandom >"$FILE"
SHA=$(sha256sum "$FILE" | cut -d' ' -f1)
# Warm-up (first connection, first blob directory, allocator arenas).
read -r rss_start _ < <(mem); reset_peak
curl -sf "$URL/api/v1/attachments/" -H "$AUTH" -F "ticket_id=$TICKET" -F "file=@$FILE;filename=warmup.bin" >/dev/null

read -r rss_warm peak_warm < <(mem)
echo "server RSS: $(( rss_start / 1024 )) MiB idle, peak $(( peak_warm / 1024 )) MiB during the warm-up upload, $(( rss_warm / 1024 )) MiB after"
printf '%-10s %5s %10s %12s %12s %12s\n' transfer round 'MiB/s' 'RSS before' 'peak during' growth
worst_growth=0
report() { # name round seconds rss_before peak
    local mibs growth
    mibs=$(python3 -c "print(f'{$SIZE_MIB/$3:.0f}')")
    growth=$(( ($5 - $4) / 1024 ))
    (( growth > worst_growth )) && worst_growth=$growth
    printf '%-10s %5s %10s %9s MiB %9s MiB %9s MiB\n' "$1" "$2" "$mibs" $(( $4 / 1024 )) $(( $5 / 1024 )) "$growth"
}

ID=""
for round in $(seq "$ROUNDS"); do
    read -r rss _ < <(mem); reset_peak
    out=$(curl -sf -o "$WORK/upload.json" -D "$WORK/upload.headers" -w '%{time_total}' \
        "$URL/api/v1/attachments/" -H "$AUTH" -F "ticket_id=$TICKET" -F "file=@$FILE;filename=payload-$round.bin")
    read -r _ peak < <(mem)
    [[ $(json '["sha256"]' <"$WORK/upload.json") == "$SHA" ]] || { echo "upload hash mismatch" >&2; exit 1; }
    ID=$(json '["id"]' <"$WORK/upload.json")
    CONSISTENCY=$(awk 'tolower($1)=="x-consistency-token:" {print $2}' "$WORK/upload.headers" | tr -d '\r')
    report upload "$round" "$out" "$rss" "$peak"
done

# Wait for the read model (other clients' long transactions on a shared cluster can pause
# projections for a while): retry the token read while it answers 503.
for _ in $(seq 60); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/attachments/$ID" \
        -H "$AUTH" -H "x-consistency-token: $CONSISTENCY")
    [[ $code == 503 ]] || break
done
[[ $code == 200 ]] || { echo "attachment metadata answered $code" >&2; exit 1; }

for round in $(seq "$ROUNDS"); do
    read -r rss _ < <(mem); reset_peak
    out=$(curl -sf -o "$WORK/download.bin" -w '%{time_total}' "$URL/api/v1/attachments/$ID/download" \
        -H "$AUTH")
    read -r _ peak < <(mem)
    [[ $(sha256sum "$WORK/download.bin" | cut -d' ' -f1) == "$SHA" ]] || { echo "download hash mismatch" >&2; exit 1; }
    report download "$round" "$out" "$rss" "$peak"
done
echo "worst peak RSS growth: ${worst_growth} MiB (target < 10 MiB); sha256 verified both ways"
