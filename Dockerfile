# WaterSpout container image: a static binary on an empty base.
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t waterspout .
#   docker run -p 8080:8080 -e WATERSPOUT_API_KEYS=a-long-random-key waterspout
#
# It listens on 0.0.0.0:8080, so it needs an API key from the environment
# (WATERSPOUT_API_KEYS, comma-separated): a server listening beyond loopback
# refuses to start without one. Any other setting comes the same way
# (WATERSPOUT_*), or from a config file mounted and named with
# WATERSPOUT_CONFIG. The health check is the binary itself (`waterspout
# health` asks /livez), since the image has no shell and no curl.
#
# cmd/waterspout's TestReleaseBuild builds the binary with this file's
# flags and checks the properties below where no container runtime runs.

ARG GO_VERSION=1.26

FROM docker.io/library/golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/waterspout ./cmd/waterspout

FROM scratch
# CA roots for rediss:// and any other TLS the server dials.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/waterspout /waterspout
# A numeric user: scratch has no /etc/passwd, and no process here needs root.
USER 65532:65532
ENV WATERSPOUT_ADDR=0.0.0.0:8080 \
    WATERSPOUT_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/waterspout", "health"]
ENTRYPOINT ["/waterspout"]
CMD ["serve"]
