"""What the vectors are built from: the parties, instants and messages, and a forger.

Most invalid vectors are *forged* (``forge.forge``): correct in every respect but the one rule
they break, so a receiver that skips that rule would open them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import mldsa
from forge import compact, forge, header_of

from schemas import Body
from schemas.registry import example_body
from services.core.keys import NodeKeys

BOM = "\ufeff"


class Sink(Protocol):
    def valid(self, name: str, description: str, data: bytes, open_as: str, **kw: Any) -> None: ...
    def refused(self, name: str, description: str, data: bytes, reason: str, **kw: Any) -> None: ...


@dataclass(frozen=True)
class World:
    """The parties, instants and sealed messages every case is built from."""

    mex: NodeKeys
    mex_next: NodeKeys
    usa: NodeKeys
    usa_before: NodeKeys
    col: NodeKeys
    bra: NodeKeys
    arg: NodeKeys
    now: datetime
    created: datetime
    rotated: datetime
    base: bytes
    routes: bytes
    receipt: bytes
    h3: bytes
    unheard_of: Body
    iso: Callable[[datetime], str]


def envelope_json(data: bytes) -> dict[str, Any]:
    return dict(json.loads(data))


def _msg_id_of(fields: dict[str, Any], original: dict[str, Any]) -> str:
    """The msg_id the key wrap binds: the forged header's own, when it has a string one."""
    msg_id = fields.get("msg_id")
    return msg_id if isinstance(msg_id, str) else str(original["msg_id"])


class Forger:
    """Forged variants of the base tracing request (MEX to USA, H1, expiring)."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.header = header_of(envelope_json(w.base))
        self.body = example_body("tracing.request").model_dump_json().encode()

    def __call__(
        self,
        drop: tuple[str, ...] = (),
        *,
        protected: bytes | None = None,
        body: bytes | None = None,
        header: dict[str, Any] | None = None,
        signer: NodeKeys | None = None,
        algs: tuple[str, ...] = ("Ed25519",),
        mldsa_key: mldsa.MLDSA65PrivateKey | None = None,
        to: list[Any] | None = None,
        **changes: Any,
    ) -> bytes:
        fields = {k: v for k, v in (header or self.header).items() if k not in drop} | changes
        return compact(
            forge(
                compact(fields) if protected is None else protected,
                self.body if body is None else body,
                msg_id=_msg_id_of(fields, header or self.header),
                signer=(signer or self.w.mex).signing,
                recipients=to or [self.w.usa.current_encryption.public()],
                algs=algs,
                mldsa_key=mldsa_key,
            )
        )
