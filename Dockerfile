# The medallion image: the release binary, the SQL models and the sample data.
# Built by docker-compose.yml (`docker compose up`); runs `medallion <args>`.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY pipeline pipeline
COPY tests tests
# With `distributed`, the one image also serves as Ballista scheduler and executor.
RUN cargo build --release --locked --bin medallion

FROM debian:bookworm-slim
# ca-certificates for S3 over TLS; cron for the nightly scheduler service.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates cron \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/medallion /usr/local/bin/medallion
COPY scripts/docker-scheduler.sh /usr/local/bin/medallion-scheduler
WORKDIR /app
COPY sql sql
COPY datasets datasets
ENTRYPOINT ["medallion"]
CMD ["run"]
