"""Seal and open throughput against the bare cost of the same primitives, in the same run.

    make bench-crypto            # the full table
    python bench/crypto.py --quick

For each body size (1 KB, 64 KB, 1 MB) and recipient count (1, 5, 34), it times ``seal`` (for all
recipients) plus ``open_envelope`` (at one recipient), and the bare primitives the envelope is made
of, called directly: AES-256-GCM encrypt and decrypt of the body, one HPKE wrap per recipient and
one unwrap, Ed25519 sign and verify over a message of the signature input's size. The ratio is
envelope / bare: what the format (JSON, base64url, header validation, body schema) costs on top.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas import HandlingCode
from schemas.information import LegislativeMeasures
from services.core.envelope import SenderKeyRecord, open_envelope, seal
from services.core.keys import NodeKeys

SIZES = {"1 KB": 1024, "64 KB": 64 * 1024, "1 MB": 1024 * 1024}
RECIPIENTS = (1, 5, 34)
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
PARTIES = [
    "USA",
    "COL",
    "ARG",
    "ATG",
    "BHS",
    "BLZ",
    "BOL",
    "BRA",
    "BRB",
    "CHL",
    "CRI",
    "DMA",
    "DOM",
    "ECU",
    "GRD",
    "GTM",
    "GUY",
    "HND",
    "HTI",
    "JAM",
    "KNA",
    "LCA",
    "NIC",
    "PAN",
    "PER",
    "PRY",
    "SLV",
    "SUR",
    "TTO",
    "URY",
    "VCT",
    "VEN",
    "CAN",
    "CUB",
]


def body_of(size: int) -> LegislativeMeasures:
    """A legislative-measures report whose JSON is about ``size`` bytes."""
    overhead = len(_body(["x"]).model_dump_json()) - 1
    per = 19_000
    need = max(1, size - overhead)
    chunks = [per] * (need // per) + ([need % per] if need % per else [])
    body = _body(["a" * n for n in chunks])
    return body


def _body(summaries: list[str]) -> LegislativeMeasures:
    return LegislativeMeasures.model_validate(
        {
            "title": "Benchmark body",
            "language": "en",
            "measures": [
                {"instrument": "statute", "title": "t", "reference": f"r{i}", "summary": s}
                for i, s in enumerate(summaries)
            ],
        }
    )


class Directory:
    def __init__(self, sender: NodeKeys) -> None:
        self.record = SenderKeyRecord(sender.signing.public(), datetime(2026, 1, 1, tzinfo=UTC))

    def signing_key(self, party: str, kid: str) -> SenderKeyRecord | None:
        return self.record


def per_call(fn: Callable[[], object], budget: float) -> float:
    """Seconds per call: median of 5 rounds, each round sized to about budget/5 seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget / 5 / one))
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n)
    return statistics.median(rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 KB and 64 KB, short rounds")
    args = parser.parse_args()
    budget = 0.25 if args.quick else 1.0
    sizes = {k: v for k, v in SIZES.items() if not (args.quick and v > 100_000)}

    sender = NodeKeys.generate("MEX")
    recipients = [NodeKeys.generate(p) for p in PARTIES]
    directory = Directory(sender)
    now = datetime.now(UTC)

    print(f"CIFTA Exchange envelope v1 benchmark ({os.cpu_count()} CPUs)")
    print("per message: seal for all recipients + open at one; bare = the same primitives alone")
    print()
    header = (
        f"{'body':>6} {'rcpts':>5} {'seal ms':>8} {'open ms':>8} {'env ms':>8} "
        f"{'bare ms':>8} {'ratio':>6} {'msg/s':>8} {'MB/s':>7}"
    )
    print(header)
    print("-" * len(header))
    headline = None
    for label, size in sizes.items():
        body = body_of(size)
        plaintext = body.model_dump_json().encode()
        for n in RECIPIENTS:
            pubs = [r.current_encryption.public() for r in recipients[:n]]
            me = recipients[0]

            def do_seal(body: LegislativeMeasures = body, pubs: list = pubs) -> bytes:  # type: ignore[type-arg]
                return seal(body, sender=sender, recipients=pubs, handling=HandlingCode.H2, now=now)

            data = do_seal()

            def do_open(data: bytes = data, me: NodeKeys = me) -> object:
                return open_envelope(data, keys=me, directory=directory, now=now)

            t_seal = per_call(do_seal, budget)
            t_open = per_call(do_open, budget)

            # bare primitives on the same sizes
            cek, iv = AESGCM.generate_key(256), os.urandom(12)
            aes = AESGCM(cek)
            ct = aes.encrypt(iv, plaintext, b"h" * 400)
            wrapped = SUITE.encrypt(cek, pubs[0].hpke_key(), info=b"i" * 120)
            sig_msg = b"s" * (len(ct) + 400 + n * 1200)
            sig = sender.signing.ed25519.sign(sig_msg)
            pub = sender.signing.ed25519.public_key()
            hpke_priv = me.current_encryption.hpke_key()
            t_aes = per_call(
                lambda aes=aes, iv=iv, pt=plaintext: aes.encrypt(iv, pt, b"h" * 400), budget / 4
            )
            t_aes += per_call(
                lambda aes=aes, iv=iv, ct=ct: aes.decrypt(iv, ct, b"h" * 400), budget / 4
            )
            t_wrap = per_call(
                lambda pk=pubs[0], c=cek: SUITE.encrypt(c, pk.hpke_key(), info=b"i" * 120),
                budget / 4,
            )
            t_unwrap = per_call(
                lambda w=wrapped, k=hpke_priv: SUITE.decrypt(w, k, info=b"i" * 120), budget / 4
            )
            t_sign = per_call(lambda m=sig_msg: sender.signing.ed25519.sign(m), budget / 4)
            t_verify = per_call(lambda m=sig_msg, s=sig, pub=pub: pub.verify(s, m), budget / 4)
            bare = t_aes + n * t_wrap + t_unwrap + t_sign + t_verify
            env = t_seal + t_open
            ratio = env / bare
            if size == 1024 and n == 1:
                headline = (env, bare, ratio)
            print(
                f"{label:>6} {n:>5} {t_seal * 1e3:8.3f} {t_open * 1e3:8.3f} {env * 1e3:8.3f} "
                f"{bare * 1e3:8.3f} {ratio:6.2f} {1 / env:8.0f} {len(plaintext) / env / 1e6:7.1f}"
            )
    if headline:
        env, bare, ratio = headline
        verdict = "meets" if ratio <= 1.3 else "MISSES"
        print()
        print(
            f"1 KB, 1 recipient: envelope {env * 1e6:.0f} us vs bare primitives {bare * 1e6:.0f} us"
            f" = ratio {ratio:.2f} ({verdict} the 1.3 target)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
