#!/bin/sh
# One-shot setup of the Docker deployment, with the same commands as `cifta demo`: the hub home,
# then each state's node home and its registration in the directory.
# Idempotent: what is already done is kept (keys are never regenerated), so it runs on every
# `docker compose up`.
set -eu
cd "$(dirname "$0")/../.."  # the repository root (/opt/cifta in the image): deploy/registry.json

HUB_HOME="${CIFTA_HUB_HOME:-/var/cifta/hub}"
export CIFTA_HUB_HOME="$HUB_HOME"
NODES="${CIFTA_NODES:-/var/cifta/nodes}"
STATES="${CIFTA_STATES:-MEX USA COL}"
HUB_URL="${CIFTA_NODE_HUB_URL:-nats://hub:4222}"
HUB_CONFIG="${CIFTA_HUB_CONFIG_DIR:-/var/cifta/hub-config}"

# The nodes' key files are sealed under the passphrase of the Docker secret node_key_passphrase.
SECRET="${CIFTA_NODE_PASSPHRASE_FILE:-/run/secrets/node_key_passphrase}"
CIFTA_NODE_KEY_PASSPHRASE="$(cat "$SECRET")"
export CIFTA_NODE_KEY_PASSPHRASE

# Idempotent by itself: keeps the registry, keys and NKey seeds it finds.
cifta hub init --registry deploy/registry.json

for STATE in $STATES; do
    NODE_HOME="$NODES/$STATE"
    if [ -f "$NODE_HOME/keys.json" ]; then
        echo "node home $NODE_HOME for $STATE: keys kept"
    else
        cifta node init --party "$STATE" --home "$NODE_HOME" --hub "$HUB_URL" \
            --passphrase-env CIFTA_NODE_KEY_PASSPHRASE
    fi
    if [ -f "$NODE_HOME/root.json" ]; then
        echo "$STATE is registered: its directory entry and credentials are kept"
    else
        # The state's registration request, and the secretariat's approval of it. In this demo
        # deployment one script plays both parts; the key id is read from the node's own file
        # where a real secretariat would have it read out over the telephone.
        cifta directory register --home "$NODE_HOME" --details "deploy/states/$STATE.json" \
            --out "$NODE_HOME/registration.json"
        KID="$(cifta keys public "$NODE_HOME/keys.json" --passphrase-env CIFTA_NODE_KEY_PASSPHRASE \
            | python -c 'import json, sys; print(json.load(sys.stdin)["signing"]["kid"])')"
        cifta directory approve "$NODE_HOME/registration.json" --confirm "$KID" --out "$NODE_HOME"
    fi
done

# The hub's nats.conf (accounts, users' public NKeys, limits), rendered here and handed to the hub
# container in a volume of its own: the hub never sees the secretariat's keys or the seeds.
# Inside the container it listens on every interface so that the services reach it as
# nats://hub:4222; docker-compose.yml publishes the port on the host's 127.0.0.1 only, hence
# plaintext is allowed.
cifta hub render-config --host 0.0.0.0 --port 4222 --insecure-plaintext
cp "$HUB_HOME/nats.conf" "$HUB_CONFIG/nats.conf"
