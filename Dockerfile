# Multi-stage build: a static, CGO-free binary on a minimal non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/billsync ./cmd/billsync \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/billsync /usr/local/bin/billsync
# /data holds the SQLite file when no Postgres URL is given; owned by the nonroot user.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER nonroot:nonroot
ENV BILLSYNC_ADDR=0.0.0.0:8080 \
    BILLSYNC_DATABASE_URL=/data/billsync.db \
    BILLSYNC_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/billsync"]
CMD ["serve"]
