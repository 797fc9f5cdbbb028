#!/bin/sh
# A state's node. Its key file is sealed under the passphrase of the Docker secret
# node_key_passphrase; `cifta node run` reads it from the variable the node home names
# (`cifta node init --passphrase-env CIFTA_NODE_KEY_PASSPHRASE`, in setup.sh).
set -eu

SECRET="${CIFTA_NODE_PASSPHRASE_FILE:-/run/secrets/node_key_passphrase}"
CIFTA_NODE_KEY_PASSPHRASE="$(cat "$SECRET")"
export CIFTA_NODE_KEY_PASSPHRASE
exec cifta node run "$@"
