#!/bin/sh
# One-shot, once the hub's JetStream answers: every state's streams, consumer and directory
# bucket, then the signed directory published into every bucket (the nodes follow it from there).
set -eu
URL="${CIFTA_HUB_URL:-nats://hub:4222}"
HUB_HOME="${CIFTA_HUB_HOME:-/var/cifta/hub}"

# The hub's port opens before JetStream has recovered its store: wait (two minutes at most) until
# the provisioning user of the first state gets an answer from the JetStream API.
python - "$URL" "$HUB_HOME" <<'PY'
import asyncio, sys, time
from pathlib import Path
from services.hub.credentials import PROVISION_USER
from services.hub.home import HubHome
from services.core.connection import HubUnreachable, connect

async def ready(url, seed):
    async with connect(url, seed) as nc:
        await nc.jetstream().account_info()

url, home = sys.argv[1], HubHome(Path(sys.argv[2]))
seed = home.user_seed(home.registry().codes()[0], PROVISION_USER)
deadline = time.monotonic() + 120
while True:
    try:
        asyncio.run(ready(url, seed))
        break
    except (HubUnreachable, OSError, Exception) as exc:
        if time.monotonic() > deadline:
            sys.exit(f"JetStream at {url} did not answer in 120 s: {type(exc).__name__}")
        time.sleep(1)
print(f"JetStream at {url} answers")
PY

cifta hub provision --url "$URL"
cifta directory publish --url "$URL"
