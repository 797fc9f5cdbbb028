#!/bin/sh
# One-shot setup of the Docker deployment, with the same commands as `cifta demo`: the hub home,
# then each state's node home, its enrolment at the hub, and the directory for every node.
# Idempotent: what is already done is kept (keys are never regenerated), so it runs on every
# `docker compose up`.
set -eu
cd "$(dirname "$0")/../.."  # the repository root (/opt/cifta in the image): deploy/registry.json

HUB_HOME="${CIFTA_HUB_HOME:-/var/cifta/hub}"
export CIFTA_HUB_HOME="$HUB_HOME"
NODES="${CIFTA_NODES:-/var/cifta/nodes}"
STATES="${CIFTA_STATES:-MEX USA COL}"
HUB_URL="${CIFTA_NODE_HUB_URL:-nats://hub:4222}"

# Whether the hub's registry holds exactly this node's public keys and the node holds the hub's
# current seed for it: `cifta hub enrol` bumps the registry version every time, so only enrol
# when something is missing or out of date.
enrolled() {
    python - "$HUB_HOME" "$NODES/$1" "$1" <<'PY'
import json
import sys
from pathlib import Path

hub, node, state = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
try:
    registry = json.loads((hub / "registry.json").read_text())
    keys = next((s.get("keys") for s in registry["states"] if s["code"] == state), None)
    same_keys = keys == json.loads((node / "public.json").read_text())
    same_seed = (node / "hub.nk").read_bytes() == (hub / "nkeys" / state / "node.nk").read_bytes()
except (OSError, ValueError, KeyError):
    sys.exit(1)
sys.exit(0 if same_keys and same_seed else 1)
PY
}

# Idempotent by itself: keeps the registry, keys and NKey seeds it finds.
cifta hub init --registry deploy/registry.json

for STATE in $STATES; do
    NODE_HOME="$NODES/$STATE"
    if [ -f "$NODE_HOME/keys.json" ]; then
        echo "node home $NODE_HOME for $STATE: keys kept"
    else
        cifta node init --party "$STATE" --home "$NODE_HOME" --hub "$HUB_URL"
    fi
    if enrolled "$STATE"; then
        echo "$STATE is enrolled: credentials kept"
    else
        cifta hub enrol --public "$NODE_HOME/public.json" --out "$NODE_HOME"
    fi
done

# The directory, now complete, to every node (rewriting it does not change its version).
for STATE in $STATES; do
    cifta hub directory --out "$NODES/$STATE/directory.json"
done
