# syntax=docker/dockerfile:1
# For those with Docker; `make image` builds the same image without it.
# The builder's Go version must equal go.mod's `go` line (main_test.go checks it),
# and `make build` compiles with make image's flags. The runtime stage runs as
# make image's user, with its entrypoint and labels (test/image checks).
ARG VERSION=v0.0.0-container
ARG REVISION=unknown

FROM golang:1.26.8 AS build
WORKDIR /src
ENV GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION
RUN make build BIN_DIR=/out VERSION=${VERSION}

# Static binary on distroless, as the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.source=https://github.com/certbridge/certbridge \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${REVISION}
COPY --from=build /out/certbridge /certbridge
USER 65532:65532
ENTRYPOINT ["/certbridge"]
