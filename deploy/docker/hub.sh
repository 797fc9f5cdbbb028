#!/bin/sh
# The hub in the foreground: render nats.conf from the registry, then become nats-server.
# (`cifta hub start` runs nats-server in the background, which a container cannot supervise.)
set -eu

HUB_HOME="${CIFTA_HUB_HOME:-/var/cifta/hub}"
export CIFTA_HUB_HOME="$HUB_HOME"

# Inside the container: listen on every interface so that the nodes reach it as nats://hub:4222;
# docker-compose.yml publishes the port on the host's 127.0.0.1 only, hence plaintext is allowed.
cifta hub render-config --host 0.0.0.0 --port 4222 --insecure-plaintext

# The same binary `cifta hub start` would run: the one beside this Python, or on the PATH.
NATS_SERVER="$(python -c 'from services.hub.server import nats_server_binary; print(nats_server_binary())')"
exec "$NATS_SERVER" -c "$HUB_HOME/nats.conf"
