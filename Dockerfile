# okaya-webhooks: built with the full Rust toolchain, run on a slim Debian as a
# non-root user.
#   docker build -t okaya-webhooks .
#   docker run -p 8080:8080 -v webhooks-data:/var/lib/okaya-webhooks/data okaya-webhooks
# The second line serves on SQLite in /var/lib/okaya-webhooks/data; add
# -e WEBHOOKS__BOOTSTRAP__DEMO_TENANT=true to get a demo API key in the log.
# For PostgreSQL and scale-out see docker-compose.yml and docs/operations.md.

FROM rust:1-bookworm AS builder
# Diesel's PostgreSQL backend links libpq, the LISTEN connection's TLS the
# same OpenSSL (libssl-dev); SQLite is compiled into the binary, and the
# Swagger UI of /docs comes from a crate (utoipa-swagger-ui `vendored`), so
# the build fetches nothing but crates.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only the workspace (see .dockerignore). The binary embeds its migrations and
# config/default.toml; nothing under docs/ is compiled in (only tests read it).
COPY . .
RUN cargo build --release --locked -p okaya-webhooks \
    && cp target/release/okaya-webhooks /okaya-webhooks

FROM debian:bookworm-slim
# libpq5 for PostgreSQL; ca-certificates for TLS to the database.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid, so orchestrators can check runAsNonRoot and volumes can be chowned.
RUN useradd --uid 10001 --user-group --no-create-home \
        --home-dir /var/lib/okaya-webhooks --shell /usr/sbin/nologin webhooks \
    && mkdir -p /var/lib/okaya-webhooks/data \
    && chown -R webhooks:webhooks /var/lib/okaya-webhooks
COPY --from=builder /okaya-webhooks /usr/local/bin/okaya-webhooks
# The default database URL, sqlite://data/webhooks.db, and the key file,
# data/encryption.key, are relative to this directory.
WORKDIR /var/lib/okaya-webhooks
USER 10001:10001
# Listen on every interface of the container. No demo tenant with a live API
# key printed into the log of a real deployment: create tenants with the admin
# API or `okaya-webhooks admin …`.
ENV WEBHOOKS__SERVER__BIND=0.0.0.0:8080 \
    WEBHOOKS__BOOTSTRAP__DEMO_TENANT=false
EXPOSE 8080
# SIGTERM starts the graceful shutdown: no new requests or claims, in-flight
# requests and deliveries finish (allow delivery.timeout plus a few seconds
# before the hard kill: `docker stop -t 30`).
STOPSIGNAL SIGTERM
# No HEALTHCHECK: the port is configurable and the image has no HTTP client.
# docker-compose.yml probes GET /readyz with bash; see docs/operations.md.
ENTRYPOINT ["/usr/local/bin/okaya-webhooks"]
CMD ["serve"]
