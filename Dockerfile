# Tourwise in a small runtime image: build with the full Rust toolchain, run on Debian slim.
FROM rust:1-bookworm AS build
# librdkafka is built from source by rdkafka-sys.
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tourwise && strip target/release/tourwise

FROM debian:bookworm-slim
# curl for the health check; CA certificates for TLS to SMTP relays and brokers.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/tourwise tourwise \
    && mkdir -p /var/lib/tourwise && chown tourwise /var/lib/tourwise
COPY --from=build /src/target/release/tourwise /usr/local/bin/tourwise
USER tourwise
WORKDIR /var/lib/tourwise
ENV TOURWISE_HTTP_ADDR=0.0.0.0:8080 \
    TOURWISE_DATA_DIR=/var/lib/tourwise
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["tourwise"]
CMD ["serve"]
