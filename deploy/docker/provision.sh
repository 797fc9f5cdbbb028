#!/bin/sh
# One-shot, once the hub is up: every state's streams, consumer and directory bucket, then the
# signed directory published into every bucket (the nodes follow it from there).
set -eu
URL="${CIFTA_HUB_URL:-nats://hub:4222}"
cifta hub provision --url "$URL"
cifta directory publish --url "$URL"
