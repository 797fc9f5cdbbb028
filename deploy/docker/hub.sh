#!/bin/sh
# The hub in the foreground: nats-server on the nats.conf that `setup` rendered from the registry
# (`cifta hub start` runs nats-server in the background, which a container cannot supervise).
# This container mounts only that file and the JetStream store: no secretariat key, no seed.
set -eu

CONFIG="${CIFTA_HUB_CONFIG:-/var/cifta/hub-config/nats.conf}"

# The same binary `cifta hub start` would run: the one beside this Python, or on the PATH.
NATS_SERVER="$(python -c 'from services.hub.server import nats_server_binary; print(nats_server_binary())')"
exec "$NATS_SERVER" -c "$CONFIG"
