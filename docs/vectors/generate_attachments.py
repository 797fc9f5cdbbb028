"""Generate ``docs/vectors/attachment-v1.json``: attachment chunk-format vectors (section 13).

    make vectors

Unlike the envelope's, these vectors are deterministic: the key is fixed and the nonces are the
chunk counters, so the same plaintext always gives the same ciphertext. Plaintexts follow one rule
(byte ``i`` is ``i mod 251``), so no large byte string is stored: a small file's ciphertext is
given whole, a larger one by the SHA-256 of each chunk. Each invalid vector builds its ciphertext
from the chunks of a valid one (``chunks``: which chunk of which vector, optionally with one bit
flipped), or opens a valid one under another key, and must be refused as ``attachment_corrupt``:
at chunk ``fails_at_chunk`` (its tag, its length, or one chunk too many), or, when that is
``null``, once the chunks run out without the last chunk the manifest's size means.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from services.core.attachments import (  # noqa: E402
    CHUNK_SIZE,
    chunk_count,
    nonce,
    seal_stream,
    split_ciphertext,
)
from services.core.encoding import b64u  # noqa: E402

OUT = Path(__file__).with_name("attachment-v1.json")
KEY = bytes(range(32))  # a published test key: never use it for anything else
OTHER_KEY = bytes(range(32, 64))
#: a ciphertext up to this size is written whole in the file
WHOLE_UP_TO = 512


def plaintext(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def valid(name: str, size: int, description: str) -> tuple[dict[str, Any], list[bytes]]:
    sink = io.BytesIO()
    sealed = seal_stream(
        io.BytesIO(plaintext(size)), size, sink, name=f"{name}.bin",
        media_type="application/octet-stream", key=KEY,
    )  # fmt: skip
    data = sink.getvalue()
    chunks = split_ciphertext(data, size)
    vector: dict[str, Any] = {
        "name": name,
        "description": description,
        "manifest": sealed.manifest.model_dump(),
        "key_hex": KEY.hex(),
        "plaintext_size": size,
        "ciphertext_size": len(data),
        "nonces_hex": [nonce(i, i == len(chunks) - 1).hex() for i in range(len(chunks))],
        "chunks_sha256": [hashlib.sha256(c).hexdigest() for c in chunks],
        "expect": "valid",
    }
    if len(data) <= WHOLE_UP_TO:
        vector["ciphertext"] = b64u(data)
    return vector, chunks


def main() -> int:
    vectors: list[dict[str, Any]] = []
    chunks_of: dict[str, list[bytes]] = {}
    for name, size, what in (
        ("empty", 0, "an empty file: one last chunk holding only its tag"),
        ("one-byte", 1, "one byte"),
        ("short", 300, "300 bytes in one last chunk"),
        ("one-chunk", CHUNK_SIZE, "exactly one chunk: the only chunk, full, is the last"),
        ("chunk-and-a-byte", CHUNK_SIZE + 1, "a full chunk, then a last chunk of one byte"),
        ("three-chunks", 2 * CHUNK_SIZE + 1000, "two full chunks and a last one"),
    ):
        vector, chunks = valid(name, size, what)
        vectors.append(vector)
        chunks_of[name] = chunks
    manifests = {v["name"]: v["manifest"] for v in vectors}

    def invalid(
        name: str, of: str, picks: list[tuple[int, int | None]], fails_at: int | None, what: str,
        *, key: bytes | None = None,
    ) -> None:  # fmt: skip
        manifest = dict(manifests[of])
        if key is not None:
            manifest["key"] = b64u(key)
        vectors.append({
            "name": name, "description": what, "manifest": manifest,
            "chunks": [{"of": of, "index": i, **({} if bit is None else {"flip_bit": bit})}
                       for i, bit in picks],
            "fails_at_chunk": fails_at,
            "expect": {"reason": "attachment_corrupt"},
        })  # fmt: skip

    three = [(0, None), (1, None), (2, None)]
    invalid("truncated-last-dropped", "three-chunks", three[:2], None,
            "the last chunk removed: the stream ends without a last chunk")  # fmt: skip
    invalid("truncated-to-nothing", "three-chunks", [], None, "no chunk at all")
    invalid("truncated-first-only", "chunk-and-a-byte", [(0, None)], None,
            "only the first of two chunks: it was not sealed as a last chunk")  # fmt: skip
    invalid("reordered", "three-chunks", [(1, None), (0, None), (2, None)], 0,
            "chunks 0 and 1 swapped")  # fmt: skip
    invalid("duplicated", "three-chunks", [(0, None), (0, None), (1, None), (2, None)], 1,
            "chunk 0 twice")  # fmt: skip
    invalid("extended", "one-chunk", [(0, None), (0, None)], 1,
            "a chunk after the last one")  # fmt: skip
    invalid("flipped-first-bit", "three-chunks", [(0, 0), (1, None), (2, None)], 0,
            "bit 0 of chunk 0 flipped")  # fmt: skip
    invalid("flipped-tag", "three-chunks", [(0, None), (1, None), (2, 8 * 1000 + 8 * 16 - 1)], 2,
            "the last bit of the last chunk's tag flipped")  # fmt: skip
    invalid("flipped-empty", "empty", [(0, 5)], 0, "a bit of the empty file's tag flipped")
    invalid("wrong-key", "three-chunks", three, 0, "opened under another key",
            key=OTHER_KEY)  # fmt: skip
    invalid("wrong-key-empty", "empty", [(0, None)], 0, "the empty file under another key",
            key=OTHER_KEY)  # fmt: skip
    assert chunk_count(0) == 1 and all(chunks_of.values())
    doc = {
        "format": "cifta-exchange-attachment-vectors",
        "attachment_enc": "A256GCM-STREAM-64K",
        "how_to_use": (__doc__ or "").strip().splitlines()[2:],
        "plaintext_rule": "byte i of a vector's plaintext is i mod 251",
        "vectors": vectors,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} attachment vectors to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
