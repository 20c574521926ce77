#!/usr/bin/env bash
# Validates what deploys ticketd without starting it: the compose stack (`docker compose config`
# with the v2 plugin, else Debian's `docker-compose`, which checks the file against the Compose
# Specification schema without an engine), that it refuses to render with a secret unset, and the
# nginx template rendered as the stack renders it (`nginx -t`).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/ticketd-check-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  echo "check-deploy: neither \`docker compose\` nor docker-compose is installed" >&2
  exit 1
fi

secrets=(POSTGRES_PASSWORD='p@ss:w/rd#1' SECRET_KEY="$(printf 'k%.0s' {1..64})"
         TICKETD_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
         TICKETD_ADMIN_EMAIL=admin@example.com TICKETD_ADMIN_PASSWORD=correct-horse-9)
env -i PATH="$PATH" "${secrets[@]}" "${compose[@]}" -f docker-compose.yml config >"$work/compose.yml"
grep -q 'replicas: 2' "$work/compose.yml"
# The password travels in PGPASSWORD, never inside a URL.
if grep -q 'p@ss' <(grep DATABASE_URL "$work/compose.yml"); then
  echo "check-deploy: the database password is in DATABASE_URL" >&2; exit 1
fi
# Every secret is required: leaving one out stops the rendering.
for i in "${!secrets[@]}"; do
  partial=("${secrets[@]:0:$i}" "${secrets[@]:$((i + 1))}")
  if env -i PATH="$PATH" "${partial[@]}" "${compose[@]}" -f docker-compose.yml config >/dev/null 2>&1; then
    echo "check-deploy: docker-compose.yml renders without ${secrets[$i]%%=*}" >&2; exit 1
  fi
done

# nginx -t on the template as the stack renders it (with a resolvable upstream host).
mkdir -p "$work/nginx/conf.d"
TICKETD_UPSTREAM_SERVERS="server 127.0.0.1:8080;" NGINX_LISTEN=80 NGINX_CLIENT_MAX_BODY_SIZE=26m \
  envsubst '${TICKETD_UPSTREAM_SERVERS} ${NGINX_LISTEN} ${NGINX_CLIENT_MAX_BODY_SIZE}' \
  <deploy/nginx/templates/default.conf.template >"$work/nginx/conf.d/default.conf"
if grep -n '\${' "$work/nginx/conf.d/default.conf"; then
  echo "check-deploy: the template uses a variable the stack does not set" >&2; exit 1
fi
cat >"$work/nginx/nginx.conf" <<CONF
pid $work/nginx.pid;
events {}
http { include /etc/nginx/mime.types; include $work/nginx/conf.d/*.conf; }
CONF
"${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}" -t -q -p "$work/nginx" -e "$work/error.log" -c "$work/nginx/nginx.conf"
echo "check-deploy: compose stack and nginx template are valid"
