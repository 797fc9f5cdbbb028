"""The attachment manifest: what a body says of each file that travels with it.

A photograph of markings, a scanned licence, the X-ray of a container: the file itself travels
encrypted beside the envelope (docs/envelope.md section 13), and its manifest travels *inside* the
encrypted body, so the envelope's signature covers it and the hub learns neither its name nor its
key. ``ciphertext_sha256`` names the exact bytes the sender stored at the hub: the recipient's
receipt repeats it once it has fetched and verified them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# This module stands below schemas.base (every Body carries a list of manifests), so it repeats
# WireModel's strict configuration instead of importing it.
_STRICT = ConfigDict(extra="forbid", frozen=True, str_max_length=20_000, validate_default=True)
_Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

#: The one chunk size of version 1 (plaintext bytes per chunk), as age uses.
CHUNK_SIZE = 64 * 1024
#: The one content encryption of version 1: AES-256-GCM in the STREAM construction.
ATTACHMENT_ENC = "A256GCM-STREAM-64K"
#: The largest file the format can describe (a node's own limit is far lower: 100 MB by default).
MAX_ATTACHMENT_SIZE = 2**40
#: Attachments one body may carry.
MAX_ATTACHMENTS = 16

_FORBIDDEN_IN_NAME = set('/\\:*?"<>|') | {chr(c) for c in range(32)} | {"\x7f"}


def _file_name(name: str) -> str:
    # A name is shown and offered as a default file name: no path, no control character, so
    # that saving it can never write outside the folder a person chose.
    if name in {".", ".."} or set(name) & _FORBIDDEN_IN_NAME or name != name.strip():
        raise ValueError("a file name without path separators, control characters or padding")
    return name


#: A file's name, without any path.
FileName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_file_name)
]
#: An RFC 6838 media type, lowercase, without parameters (``image/png``, ``application/pdf``).
MediaType = Annotated[
    str,
    StringConstraints(
        max_length=255,
        pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$",
    ),
]
#: A 32-byte key in unpadded base64url (43 characters; the last one carries 4 zero bits).
AttachmentKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]


class AttachmentManifest(BaseModel):
    """One file sent with a message: its name, type and size, and how to fetch and open it."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [
                {
                    "name": "markings-serial.png",
                    "media_type": "image/png",
                    "size": 48213,
                    "chunk_size": CHUNK_SIZE,
                    "enc": ATTACHMENT_ENC,
                    "key": "q0X2bq8Qw0wq9tKr1C4v0m7h6x3bZb1Yc7m0a2J8o9U",
                    "ciphertext_sha256": "9f2c4d0e1b7a3c5d9e8f7a6b5c4d3e2f"
                    "1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d",
                }
            ]
        },
    )

    name: FileName
    media_type: MediaType
    #: plaintext bytes
    size: Annotated[int, Field(ge=0, le=MAX_ATTACHMENT_SIZE)]
    chunk_size: Literal[65536]
    enc: Literal["A256GCM-STREAM-64K"]
    #: the random per-attachment key, carried only inside the encrypted body
    key: AttachmentKey
    #: SHA-256 of the whole ciphertext (every chunk, tags included): the object's name at the hub
    ciphertext_sha256: _Sha256Hex


def _distinct_names(items: list[AttachmentManifest]) -> list[AttachmentManifest]:
    names = [a.name for a in items]
    if len(set(names)) != len(names):
        raise ValueError("two attachments share a name")
    if len({a.ciphertext_sha256 for a in items}) != len(items):
        raise ValueError("two attachments share a ciphertext")
    return items


#: The attachments of one body: distinct names and objects.
Attachments = Annotated[
    list[AttachmentManifest],
    Field(max_length=MAX_ATTACHMENTS),
    AfterValidator(_distinct_names),
]
