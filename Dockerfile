# syntax=docker/dockerfile:1
# The builder's Go version must equal go.mod's `go` line (main_test.go checks it).
FROM golang:1.26.8 AS build
WORKDIR /src
ENV GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-container
RUN make build BIN_DIR=/out VERSION=${VERSION}

# Static binary on distroless, as the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/certbridge /certbridge
USER 65532:65532
ENTRYPOINT ["/certbridge"]
