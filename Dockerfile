# syntax=docker/dockerfile:1
# Build:  docker build -t meshguard:0.1.0 \
#           --build-arg MESHGUARD_GIT_COMMIT=$(git rev-parse --short HEAD) .
# The image runs `meshguard serve`; the Deployment in deploy/base passes the
# config, certificate and listener flags.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Cargo.toml declares the bench (benches/engine.rs) and the integration test
# (tests/tests.rs) as targets: cargo refuses a manifest whose targets are
# missing, even for a plain `build`, so they are copied too.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
COPY tests ./tests
# Shown as meshguard_build_info{commit} (.git is not in the build context).
ARG MESHGUARD_GIT_COMMIT=unknown
ENV MESHGUARD_GIT_COMMIT=${MESHGUARD_GIT_COMMIT}
# The registry cache only speeds up rebuilds; the binary stays in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked

# glibc and libgcc only, no shell, no package manager. Same Debian release as
# the builder, so the binary's glibc requirement is met.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/meshguard /usr/local/bin/meshguard
# Numeric, so runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/meshguard"]
CMD ["serve"]
