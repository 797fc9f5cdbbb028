"""The asking side of blind record lookup, and a state's filter publishing (docs/lookup.md).

``lookup`` asks every state that published a filter at once: for each, it blinds the firearm's
lookup input afresh, asks that state to evaluate it, verifies the proof under the OPRF key the
state's signed filter names, finalises, and tests the output against the filter. The answering
states see a random group element; the hub sees that and the reply; only the asker learns which
states hold a record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from schemas.lookup import REQUEST_FORMAT, EvaluationReply, EvaluationRequest
from services.core import subjects
from services.core.connection import quiet, servers, tls_context
from services.core.directory import Directory
from services.core.encoding import b64u, unb64u, uuid7
from services.core.keys import NodeKeys, SigningPublicKey
from services.core.lookup_filter import (
    BloomFilter,
    FilterError,
    PublishedFilter,
    open_filter,
    sign_filter,
)
from services.core.metrics import strip_trace_headers_on
from services.core.normalise import Firearm
from services.core.oprf import LookupCryptoError, blind, finalize
from services.node.records import Register
from services.node.settings import NodeSettings

REQUEST_TIMEOUT_S = 5.0


class Outcome(StrEnum):
    HIT = "hit"  # the state's filter holds the firearm (or a stated false positive)
    NO_HIT = "no_hit"
    NO_FILTER = "no_filter"  # the state published no filter: it was not asked
    BAD_FILTER = "bad_filter"  # its filter does not verify: it was not asked
    REFUSED = "refused"  # it refused the evaluation, with a reason code
    UNREACHABLE = "unreachable"  # no answer in time
    BAD_PROOF = "bad_proof"  # an answer whose proof does not verify under its filter's key


@dataclass(frozen=True)
class StateAnswer:
    party: str
    outcome: Outcome
    detail: str = ""
    fp_rate: float | None = None


async def open_connection(settings: NodeSettings, name: str, *, reconnect: bool) -> Client:
    """A connection to the hub as the node's own user."""
    tls = tls_context(settings.hub_url, settings.tls_ca)
    # it asks other states directly: no trace header may leave with it (issue 15)
    return strip_trace_headers_on(
        await nats.connect(
            servers(settings.hub_url),
            nkeys_seed=str(settings.credentials_path),
            name=name,
            allow_reconnect=reconnect,
            # nats-py retries a refused first connection forever unless this is positive
            max_reconnect_attempts=-1 if reconnect else 1,
            error_cb=None if reconnect else quiet,
            reconnect_time_wait=1,
            connect_timeout=5,
            tls=tls,
        )
    )


@asynccontextmanager
async def connect(settings: NodeSettings, name: str = "cifta-lookup") -> AsyncIterator[Client]:
    """A short connection as the node's own user (the CLI asks and publishes through it)."""
    nc = await open_connection(settings, name, reconnect=False)
    try:
        yield nc
    finally:
        await nc.close()


def build_filter(keys: NodeKeys, inputs: Sequence[bytes], fp_rate: float, now: datetime) -> bytes:
    """The signed filter of ``inputs`` (the register's lookup inputs) under this state's key."""
    lookup = keys.lookup
    if lookup is None:
        raise FilterError("this node holds no lookup key (cifta records adds one)")
    bloom = BloomFilter.build((lookup.output(x) for x in inputs), len(inputs), fp_rate)
    return sign_filter(
        keys.party, keys.signing, lookup.public(), bloom,
        records=len(inputs), fp_rate=fp_rate, built_at=now,
    )  # fmt: skip


async def publish_filter(nc: Client, party: str, value: bytes) -> int:
    """Put ``party``'s signed filter into the bucket; the stream sequence it was stored at."""
    ack = await nc.jetstream().publish(subjects.lookup_filter_key(party), value, timeout=10)
    return ack.seq


def _signing_key(directory: Directory, party: str, kid: str) -> SigningPublicKey | None:
    record = directory.signing_key(party, kid)
    if record is None or record.revoked_at is not None:
        return None
    return record.key


async def fetch_filter(nc: Client, party: str, directory: Directory) -> PublishedFilter | None:
    """``party``'s verified filter, None if it published none; :class:`FilterError` if bad."""
    js = nc.jetstream(prefix=subjects.LOOKUP_API)
    try:
        msg = await js.get_last_msg(
            subjects.LOOKUP_STREAM, subjects.lookup_filter_key(party), direct=True
        )
    except NotFoundError:
        return None
    return open_filter(msg.data or b"", party, lambda kid: _signing_key(directory, party, kid))


async def evaluate_at(
    nc: Client, answerer: str, asker: str, blinded: bytes, timeout: float
) -> EvaluationReply:
    """Ask ``answerer`` to evaluate one blinded element; its reply, validated."""
    request = EvaluationRequest(format=REQUEST_FORMAT, request_id=uuid7(), blinded=b64u(blinded))
    msg = await nc.request(
        subjects.lookup_evaluation_subject(answerer, asker),
        request.model_dump_json().encode(),
        timeout=timeout,
    )
    reply = EvaluationReply.model_validate_json(msg.data)
    if reply.refused is None and reply.request_id != request.request_id:
        raise LookupCryptoError("the reply answers another request")
    return reply


async def ask_state(
    nc: Client, asker: str, published: PublishedFilter, firearm: Firearm, timeout: float
) -> StateAnswer:
    """One state, whose verified filter is ``published``: blind, ask, verify, test."""
    party, key = published.party, published.oprf_key
    blinded = blind(firearm.lookup_input())
    try:
        reply = await evaluate_at(nc, party, asker, blinded.element, timeout)
    except (TimeoutError, NoRespondersError, NatsError) as exc:
        return StateAnswer(party, Outcome.UNREACHABLE, type(exc).__name__)
    except (ValidationError, LookupCryptoError):
        return StateAnswer(party, Outcome.BAD_PROOF, "the reply is not a valid evaluation reply")
    if reply.refused is not None:
        return StateAnswer(party, Outcome.REFUSED, reply.refused.value)
    assert reply.evaluated is not None and reply.proof is not None
    if reply.oprf_kid != key.kid:
        return StateAnswer(
            party, Outcome.BAD_PROOF, "evaluated under a key its filter does not name"
        )
    try:
        output = finalize(blinded, unb64u(reply.evaluated), unb64u(reply.proof), key)
    except LookupCryptoError as exc:
        return StateAnswer(party, Outcome.BAD_PROOF, str(exc))
    hit = output in published.bloom
    return StateAnswer(party, Outcome.HIT if hit else Outcome.NO_HIT, fp_rate=published.fp_rate)


async def lookup(
    nc: Client,
    asker: str,
    firearm: Firearm,
    directory: Directory,
    *,
    states: Sequence[str] | None = None,
    timeout: float = REQUEST_TIMEOUT_S,
    concurrency: int = 16,
) -> list[StateAnswer]:
    """Ask every state of the directory but this one (or ``states``), all at once."""
    targets = [s for s in (states or directory.parties()) if s not in (asker, "SEC")]
    gate = asyncio.Semaphore(concurrency)

    async def one(party: str) -> StateAnswer:
        async with gate:
            try:
                published = await fetch_filter(nc, party, directory)
            except FilterError as exc:
                return StateAnswer(party, Outcome.BAD_FILTER, str(exc))
            except (TimeoutError, NatsError) as exc:
                return StateAnswer(party, Outcome.UNREACHABLE, type(exc).__name__)
            if published is None:
                return StateAnswer(party, Outcome.NO_FILTER)
            return await ask_state(nc, asker, published, firearm, timeout)

    return list(await asyncio.gather(*(one(p) for p in targets)))


def hits(answers: Sequence[StateAnswer]) -> list[str]:
    """The states whose filter holds the firearm, in code order."""
    return sorted(a.party for a in answers if a.outcome is Outcome.HIT)


async def lookup_from_home(
    settings: NodeSettings, register: Register, firearm: Firearm, officer: str, now: datetime
) -> list[StateAnswer]:
    """What ``cifta lookup`` does: ask every state through the node's credentials and directory;
    count the lookup (and its number of hits, never the firearm) in the register."""
    directory = settings.directory_trust().directory()
    async with connect(settings) as nc:
        answers = await lookup(nc, settings.party, firearm, directory)
    asked = sum(a.outcome not in (Outcome.NO_FILTER, Outcome.BAD_FILTER) for a in answers)
    register.record_lookup(officer, now.timestamp(), asked, len(hits(answers)))
    return answers


async def republish(
    settings: NodeSettings, keys: NodeKeys, register: Register, now: datetime
) -> tuple[int, int]:
    """Rebuild this state's filter from its register and publish it: (records, stream sequence)."""
    inputs = register.lookup_inputs()
    value = build_filter(keys, inputs, settings.lookup_fp_rate, now)
    async with connect(settings) as nc:
        seq = await publish_filter(nc, settings.party, value)
    return len(inputs), seq
