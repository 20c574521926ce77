#!/usr/bin/env bash
# Runs every test: Rust (aggregates, projections, API against the real PostgreSQL and the real
# server, CLI), the contract check (Schemathesis against a real server, scripts/schemathesis.sh),
# then the SPA's type check, unit tests and the end-to-end journeys in Chromium, the same
# journey through nginx in front of two ticketd processes (scripts/two-process.sh), and the
# validation of the compose stack (scripts/check-deploy.sh).
# Needs PostgreSQL on $TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres):
# each test creates and drops its own database; and NATS with JetStream on 127.0.0.1:4222
# (each test uses a stream and subjects of its own, and deletes them).
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# The e-mail tests talk to a real SMTP server (aiosmtpd, tests/support/smtp_sink.py) from a
# virtual environment made here; the NATS tests to the server on 127.0.0.1:4222 (JetStream on).
venv=.venv-test
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd>=1.4,<2'
fi
export TICKETD_TEST_PYTHON="$PWD/$venv/bin/python"

cargo nextest run --workspace --no-fail-fast

cargo build --bin ticketd
./scripts/schemathesis.sh

if [ -f frontend/package.json ]; then
  (cd frontend && [ -d node_modules ] || npm ci --no-audit --no-fund)
  (cd frontend && npm run check:api --if-present)
  (cd frontend && npm run type-check)
  (cd frontend && npm run test:unit)
  (cd frontend && npm run build)
  cargo build --bin ticketd
  target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
  (cd frontend && TICKETD_BIN="$target_dir/debug/ticketd" npm run test:e2e --if-present)
  # Production as people run it: nginx (deploy/) in front of two ticketd processes.
  TICKETD_BIN="$target_dir/debug/ticketd" ./scripts/two-process.sh
fi

# The compose stack and the nginx template are valid.
./scripts/check-deploy.sh
