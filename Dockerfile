# syntax=docker/dockerfile:1
# One image for the operator, the gateway and the workers: `tributary operator`,
# `tributary gateway`, `tributary worker sink|batch` (the operator starts its workers with its own
# image). Build from the repository root:  docker build -t tributary:dev .

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# rdkafka builds its bundled librdkafka with cmake (which wants curl's headers) and links OpenSSL
# and zlib: the same packages as scripts/deps.sh.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev libssl-dev pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crds crds
COPY operator operator
COPY workers workers
COPY gateway-wire gateway-wire
COPY cli cli
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tributary \
 && install -m 0755 target/release/tributary /usr/local/bin/tributary

FROM debian:${DEBIAN_RELEASE}-slim
# The binary needs glibc, OpenSSL and zlib at run time, and CA roots for AWS and Kafka TLS.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/tributary /usr/local/bin/tributary
# The unprivileged user the chart and the worker pods run as (runAsNonRoot needs a number).
USER 65532:65532
ENV HOME=/tmp
ENTRYPOINT ["/usr/local/bin/tributary"]
CMD ["--help"]
