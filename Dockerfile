# One image: ticketd (API, projection workers, CLI) and the built SPA it serves, with the brotli
# and gzip files the build writes beside each asset. nginx runs from its own stock image with the
# template in deploy/ (see docker-compose.yml).
FROM node:20-bookworm-slim AS spa
WORKDIR /app
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# Same origin as the API: the browser calls /api on the host it loaded the page from.
RUN npx vue-tsc --build && npx vite build --mode docker

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY aggregates aggregates
COPY projections projections
COPY migrations migrations
COPY src src
COPY benches benches
COPY tests tests
RUN cargo build --release --locked --bin ticketd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/ticketd ticketd \
    && mkdir -p /var/lib/ticketd && chown ticketd /var/lib/ticketd
COPY --from=build /src/target/release/ticketd /usr/local/bin/ticketd
COPY --from=spa /app/dist /usr/share/ticketd/static
USER ticketd
ENV TICKETD_ADDR=0.0.0.0:8080 TICKETD_DATA_DIR=/var/lib/ticketd \
    TICKETD_STATIC_DIR=/usr/share/ticketd/static ENVIRONMENT=production
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 CMD curl -fs http://localhost:8080/healthz || exit 1
CMD ["ticketd", "serve"]
