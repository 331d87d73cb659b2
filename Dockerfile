# The images of converse-server, converse-operator and converse-fake-llm: one static (musl) binary
# on an empty base, run as 65532:65532. The fake-llm image holds the FAKE provider APIs (OpenAI,
# Anthropic, Gemini, OpenAI-compatible) for tests and the demo — never a real model; every answer
# starts with "[fake".
#
# Build context: the repository root. Build args:
#   BIN      the program: converse-server (default), converse-operator or fake-llm
#   SOURCE   where the binary comes from: `build` (default) compiles it in a Rust image (needs
#            network); `prebuilt` copies target/images/stage/$BIN and
#            target/images/stage/ca-certificates.crt from the context, which `make images` prepares
#   VERSION, GIT_COMMIT   the version and revision labels (GIT_COMMIT is also stamped into
#            `--version` when compiled here)
#
#   docker build --build-arg BIN=converse-server   -t converse-server   .   # compiles (needs network)
#   docker build --build-arg BIN=converse-operator -t converse-operator .
#   docker build --build-arg BIN=fake-llm          -t converse-fake-llm .
#   make images                     # here: SOURCE=prebuilt, buildah, no network (scripts/images.sh)
#
# What differs between the programs (labels, environment, port, entrypoint, whether a CA bundle is
# included) is in its `runtime-$BIN` stage, not in build args: ENTRYPOINT and CMD take no variables,
# and a build arg can neither leave out an ENV variable nor skip a COPY.
# Unused stages (also `build`, FROM a remote image, when SOURCE=prebuilt) are skipped, so a
# prebuilt image needs no pull.

ARG BIN=converse-server
ARG SOURCE=build
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm

# --- compile (users with Docker) ---
FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ARG BIN
ARG GIT_COMMIT=""
# --bin, not -p: fake-llm's package is converse-fake-llm; the binary name is unique in the workspace.
RUN CONVERSE_GIT_COMMIT="${GIT_COMMIT}" cargo build --release --locked \
      --target x86_64-unknown-linux-musl --bin "${BIN}" \
 && mkdir -p /out \
 && cp "target/x86_64-unknown-linux-musl/release/${BIN}" /out/ \
 && cp /etc/ssl/certs/ca-certificates.crt /out/

# --- or take what `make images` built ---
FROM scratch AS prebuilt
ARG BIN
COPY target/images/stage/${BIN} /out/${BIN}
COPY target/images/stage/ca-certificates.crt /out/ca-certificates.crt

# What the runtime stages copy from: /out/$BIN and /out/ca-certificates.crt.
FROM ${SOURCE} AS source

# --- what every image has ---
FROM scratch AS runtime
ARG VERSION=0.1.0
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.source="https://github.com/converse-on-kubernetes/converse" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}"
USER 65532:65532

# --- one stage per program ---
FROM runtime AS runtime-converse-server
LABEL org.opencontainers.image.title="converse-server" \
      org.opencontainers.image.description="MCP server that lets AI assistants consult other LLMs (chat, consensus)"
# Listen on all interfaces in a container (the binary's default is loopback).
ENV HTTP_HOST=0.0.0.0 \
    HTTP_PORT=3157 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 3157
ENTRYPOINT ["/converse-server"]
# reqwest's rustls verifier reads the system's roots, and scratch has none.
COPY --from=source /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=source /out/converse-server /converse-server

FROM runtime AS runtime-converse-operator
LABEL org.opencontainers.image.title="converse-operator" \
      org.opencontainers.image.description="Kubernetes operator for converse-server: the ConverseServer custom resource"
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# /healthz, /readyz, /metrics (--metrics-addr, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/converse-operator"]
CMD ["run"]
COPY --from=source /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=source /out/converse-operator /converse-operator

# No CA bundle: the fake makes no outgoing connections.
FROM runtime AS runtime-fake-llm
LABEL org.opencontainers.image.title="converse-fake-llm" \
      org.opencontainers.image.description="FAKE LLM provider APIs for tests and demos of converse-server. Not a language model."
ENV FAKE_LLM_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/fake-llm"]
COPY --from=source /out/fake-llm /fake-llm

# The default (last) stage: the image of BIN.
FROM runtime-${BIN} AS image
