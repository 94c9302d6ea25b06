# The operator image: the `anvil` binary, which runs any of the example controllers
# (`anvil run <controller>`); `anvil manifests <controller>` prints the Deployment that uses it.
#
#   docker build -t ghcr.io/anvil-rs/anvil:latest .
#   anvil manifests demo --image ghcr.io/anvil-rs/anvil:latest | kubectl apply -f -
#
# Build stage: a release build of the `anvil` package only.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p anvil \
    && cp target/release/anvil /anvil

# Runtime stage: distroless (glibc, CA certificates, no shell), as a non-root user. The
# binary talks to the API server with rustls and the in-cluster ServiceAccount token.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /anvil /usr/local/bin/anvil
USER 65532:65532
# /metrics, /healthz, /readyz (the Deployment passes --metrics-port 8080).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/anvil"]
CMD ["list"]
