# okaya-webhooks: build with the full Rust toolchain, run on a slim Debian.
#   docker build -t okaya-webhooks .
#   docker run -p 8080:8080 okaya-webhooks            # SQLite in /var/lib/okaya-webhooks/data

FROM rust:1-bookworm AS builder
# Diesel's PostgreSQL backend links libpq; SQLite is bundled into the binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p okaya-webhooks

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid, so orchestrators can check runAsNonRoot and volumes can be chowned.
RUN useradd --uid 10001 --user-group --no-create-home \
        --home-dir /var/lib/okaya-webhooks --shell /usr/sbin/nologin webhooks \
    && mkdir -p /var/lib/okaya-webhooks/data \
    && chown -R webhooks:webhooks /var/lib/okaya-webhooks
COPY --from=builder /src/target/release/okaya-webhooks /usr/local/bin/okaya-webhooks
# The default database URL, sqlite://data/webhooks.db, is relative to this directory.
WORKDIR /var/lib/okaya-webhooks
USER 10001:10001
ENV WEBHOOKS__SERVER__BIND=0.0.0.0:8080
EXPOSE 8080
# No HEALTHCHECK: the image has no HTTP client; docker-compose.yml probes the port instead.
ENTRYPOINT ["/usr/local/bin/okaya-webhooks"]
CMD ["serve"]
