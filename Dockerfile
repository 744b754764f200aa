# Builds the batch-scaler image used by deploy/ (needs only cargo: no protoc).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin batch-scaler

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/batch-scaler /usr/local/bin/batch-scaler
USER 65532:65532
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/batch-scaler"]
