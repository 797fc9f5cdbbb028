"""Attachments: sending and receiving a 100 MiB file through a real hub, against bare AES-256-GCM
and nats-py's own object store measured in the same run, with each side's peak memory.

    make bench-attachments       # 100 MiB
    python bench/attachments.py --mib 20

* aead: the bare cost of the chunk format, one core: AES-256-GCM over the file in 64 KiB chunks
  (encrypt, then decrypt), read from disk, nothing else.
* object store: nats-py's object store on the same hub (a bucket in USA's account, as its
  provisioning user): ``put`` from the file, ``get`` into a file (``writeinto``), and ``get``
  without a target (the whole object in memory).
* send: ``AttachmentStore.prepare`` (seal the file into the node's store) then ``upload`` for
  USA into MEX's own attachment stream as MEX's node user.
* receive: ``fetch`` (each chunk verified, the node's encrypted copy written) then
  ``save_plaintext`` (decrypted and verified again into the output file) as USA's node user,
  reading MEX's stream through the export and import of the generated configuration.

Each measurement runs in its own process, so its peak resident memory (``ru_maxrss``) is its
own: the issue asks that sending and receiving 100 MB keep a node under 150 MB. Ratios are
MB/s of a step over MB/s of its baseline. Nothing is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.js.api import ObjectStoreConfig

from schemas.attachment import AttachmentManifest
from services.core import subjects
from services.core.attachments import CHUNK_SIZE, TAG_LEN, nonce
from services.core.logs import configure
from services.hub.credentials import PROVISION_USER
from services.node import attachments
from services.node.attachments import AttachmentStore
from services.testbed.hub import build_hub

MIB = 1024 * 1024


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def phase_aead(src: Path) -> dict[str, Any]:
    aead, size = AESGCM(os.urandom(32)), src.stat().st_size
    count = max(1, -(-size // CHUNK_SIZE))
    enc = dec = 0.0
    with src.open("rb") as f:
        for i in range(count):
            n, plain = nonce(i, i == count - 1), f.read(CHUNK_SIZE)
            t0 = time.perf_counter()
            sealed = aead.encrypt(n, plain, None)
            t1 = time.perf_counter()
            aead.decrypt(n, sealed, None)
            t2 = time.perf_counter()
            enc, dec = enc + t1 - t0, dec + t2 - t1
    return {"encrypt_s": enc, "decrypt_s": dec, "rss_mib": _rss_mib()}


async def phase_objstore(url: str, seed: str, src: Path, out: Path, whole: bool) -> dict[str, Any]:
    nc = await nats.connect(url, nkeys_seed=seed)
    js = nc.jetstream(timeout=60)
    result: dict[str, Any] = {}
    try:
        if not whole:
            # room in USA's account: its empty inbox gives up most of its reservation
            inbox = (await js.stream_info(subjects.inbox_stream("USA"))).config
            inbox.max_bytes = 16 * MIB
            await js.update_stream(inbox)
            size = src.stat().st_size
            store = await js.create_object_store(
                "BENCH", config=ObjectStoreConfig(bucket="BENCH", max_bytes=size + 16 * MIB)
            )
            start = time.perf_counter()
            with src.open("rb") as f:
                await store.put("file", f)
            result["put_s"] = time.perf_counter() - start
            start = time.perf_counter()
            with out.open("wb") as f:
                await store.get("file", writeinto=f)
            result["get_s"] = time.perf_counter() - start
        else:
            store = await js.object_store("BENCH")
            start = time.perf_counter()
            got = await store.get("file")
            result["get_whole_s"] = time.perf_counter() - start
            del got
    finally:
        await nc.close()
    result["rss_mib"] = _rss_mib()
    return result


async def phase_send(url: str, seed: str, src: Path, home: Path) -> dict[str, Any]:
    start = time.perf_counter()
    prepared = AttachmentStore(home).prepare(src, max_bytes=2**40)
    sealed = time.perf_counter() - start
    nc = await nats.connect(url, nkeys_seed=seed)
    try:
        start = time.perf_counter()
        await attachments.upload(nc, "MEX", ["USA"], prepared, timeout_s=60)
        stored = time.perf_counter() - start
    finally:
        await nc.close()
    return {"seal_s": sealed, "upload_s": stored, "rss_mib": _rss_mib(),
            "manifest": prepared.manifest.model_dump()}  # fmt: skip


async def phase_receive(
    url: str, seed: str, manifest: dict[str, Any], home: Path, out: Path
) -> dict[str, Any]:
    m = AttachmentManifest.model_validate(manifest)
    nc = await nats.connect(url, nkeys_seed=seed)
    try:
        start = time.perf_counter()
        store = AttachmentStore(home)
        await attachments.fetch(nc, "USA", "MEX", m, store, max_bytes=2**40, timeout_s=60)
        fetched = time.perf_counter() - start
    finally:
        await nc.close()
    start = time.perf_counter()
    store.save_plaintext(m, out)
    saved = time.perf_counter() - start
    return {"fetch_s": fetched, "save_s": saved, "rss_mib": _rss_mib()}


def run_phase(args: argparse.Namespace) -> None:
    src, root = Path(args.src), Path(args.root)
    match args.phase:
        case "aead":
            result = phase_aead(src)
        case "objstore" | "objstore-whole":
            result = asyncio.run(phase_objstore(args.url, args.seed, src, root / "obj.out",
                                                args.phase == "objstore-whole"))  # fmt: skip
        case "send":
            result = asyncio.run(phase_send(args.url, args.seed, src, root / "MEX"))
        case "receive":
            manifest = json.loads(Path(args.manifest).read_text())
            result = asyncio.run(
                phase_receive(args.url, args.seed, manifest, root / "USA", root / "out.bin")
            )
        case _:
            raise SystemExit(f"unknown phase {args.phase}")
    print(json.dumps(result))


def child(phase: str, **kw: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--phase", phase]
    for k, v in kw.items():
        argv += [f"--{k}", v]
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{phase} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--phase")
    for name in ("src", "root", "url", "seed", "manifest"):
        parser.add_argument(f"--{name}")
    args = parser.parse_args()
    configure(json=True, level="WARNING")
    if args.phase:
        run_phase(args)
        return 0
    size = args.mib * MIB
    with tempfile.TemporaryDirectory(prefix="cifta-bench-att-") as tmp:
        root = Path(tmp)
        hub = build_hub(root, states=("MEX", "USA"))
        hub.start()
        try:
            asyncio.run(hub.provision())
            src = root / "photo.bin"
            with src.open("wb") as f:
                for _ in range(args.mib):
                    f.write(os.urandom(MIB))
            common = {"src": str(src), "root": str(root), "url": hub.url}
            aead = child("aead", **common)
            admin = str(hub.home.user_seed("USA", PROVISION_USER))
            obj = child("objstore", seed=admin, **common)
            whole = child("objstore-whole", seed=admin, **common)
            send = child("send", seed=str(hub.home.node_seed("MEX")), **common)
            (root / "manifest.json").write_text(json.dumps(send.pop("manifest")))
            recv = child("receive", seed=str(hub.home.node_seed("USA")),
                         manifest=str(root / "manifest.json"), **common)  # fmt: skip
        finally:
            hub.stop()
    report(size, aead, obj, whole, send, recv)
    return 0


def report(size: int, aead: dict[str, Any], obj: dict[str, Any], whole: dict[str, Any],
           send: dict[str, Any], recv: dict[str, Any]) -> None:  # fmt: skip
    mb = size / 1e6

    def rate(seconds: float) -> float:
        return mb / seconds

    send_s = send["seal_s"] + send["upload_s"]
    recv_s = recv["fetch_s"] + recv["save_s"]
    print(f"attachment of {size // MIB} MiB ({size / 1e6:.1f} MB), chunks of {CHUNK_SIZE} B "
          f"(+{TAG_LEN} B tag), one hub with sync_interval=always")  # fmt: skip
    rows = [
        ("bare AES-256-GCM encrypt", rate(aead["encrypt_s"]), aead["rss_mib"]),
        ("bare AES-256-GCM decrypt", rate(aead["decrypt_s"]), aead["rss_mib"]),
        ("object store put (nats-py)", rate(obj["put_s"]), obj["rss_mib"]),
        ("object store get into a file", rate(obj["get_s"]), obj["rss_mib"]),
        ("object store get, no target", rate(whole["get_whole_s"]), whole["rss_mib"]),
        ("send: seal", rate(send["seal_s"]), None),
        ("send: upload", rate(send["upload_s"]), None),
        ("send: seal + upload", rate(send_s), send["rss_mib"]),
        ("receive: fetch + verify", rate(recv["fetch_s"]), None),
        ("receive: decrypt to file", rate(recv["save_s"]), None),
        ("receive: fetch + decrypt", rate(recv_s), recv["rss_mib"]),
    ]
    print(f"{'step':34} {'MB/s':>9} {'peak RSS MiB':>13}")
    for name, r, rss in rows:
        print(f"{name:34} {r:9.1f} {'' if rss is None else f'{rss:13.1f}'}")
    print("ratios (same run):")
    print(f"  send / bare encrypt        {rate(send_s) / rate(aead['encrypt_s']):.3f}")
    print(f"  send / object store put    {rate(send_s) / rate(obj['put_s']):.3f}")
    print(f"  receive / bare decrypt     {rate(recv_s) / rate(aead['decrypt_s']):.3f}")
    print(f"  receive / object store get {rate(recv_s) / rate(obj['get_s']):.3f}")
    print(f"peak RSS: send {send['rss_mib']:.0f} MiB, receive {recv['rss_mib']:.0f} MiB "
          f"(limit 150 MB); nats-py get without a target {whole['rss_mib']:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
