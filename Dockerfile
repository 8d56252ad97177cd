# tokengate: Caddy with the tokengate plugin, in a small image that runs as
# an unprivileged user, with its state on a volume.
#
#   docker build -t tokengate --build-arg VERSION=v1.0.0 .
#   docker run -p 8080:8080 -v tokengate-data:/data \
#     -v $PWD/Caddyfile:/etc/tokengate/Caddyfile:ro tokengate
#
# The image holds the demo Caddyfile (port 8080); mount your own over it.
# The embedded store lives in /data (XDG_DATA_HOME): keep it on a volume.
# Caddy's admin endpoint listens on localhost:2019 inside the container;
# `docker exec <container> tokengate user list --org acme` reaches it.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/tokengate/tokengate/module/tokengate.BuildVersion=${VERSION}" \
      -o /out/tokengate ./cmd/tokengate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokengate /usr/bin/tokengate
COPY testdata/Caddyfile /etc/tokengate/Caddyfile
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/data/config
VOLUME /data
USER nonroot:nonroot
EXPOSE 8080 80 443 443/udp
ENTRYPOINT ["/usr/bin/tokengate"]
CMD ["run", "--config", "/etc/tokengate/Caddyfile"]
