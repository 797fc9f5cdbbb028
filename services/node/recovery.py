"""``cifta node recover``: take again, by stream sequence, what the hub's inbox stream still holds.

The node never lets a delivery reach its last attempt because of its own store (the store gate,
services/node/health.py), but an older node, a deleted consumer or a node that was down past the
consumer's attempts can leave envelopes in ``INBOX_<state>`` that were never stored, refused or
quarantined. The stream keeps every envelope for its retention (90 days, deny delete). This reads
it message by message with JetStream's direct get and puts each through the node's ordinary
decision (``NodeCore.process``): what is stored already is skipped by its hash, what was refused
stays refused, the rest is stored, refused and quarantined, or parked, exactly once. Running it
twice changes nothing the second time.

It holds the node home's lock: the node must be stopped while it runs (its receipts and audit
events wait in the outboxes and leave when the node runs again).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from services.core import subjects
from services.core.logs import get_logger
from services.node.app import NodeRuntime, server_time
from services.node.core import Action, Delivery
from services.node.lockfile import HomeLock
from services.node.settings import NodeSettings

log = get_logger("cifta.node")


@dataclass
class Recovery:
    """What a recovery found, by outcome."""

    scanned: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    quarantine_held: int = 0  # refused envelopes whose copy the hub did not take during the run

    def to_json(self) -> dict[str, object]:
        return {
            "scanned": self.scanned,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            **{k: self.outcomes[k] for k in OUTCOMES},
            "quarantine_held": self.quarantine_held,
        }


OUTCOMES = ("stored", "already_stored", "refused", "already_refused", "parked", "already_parked")


def _outcome(action: Action, duplicate: bool, deferred: bool) -> str:
    if action is Action.ACK:
        if deferred:
            return "already_parked" if duplicate else "parked"
        return "already_stored" if duplicate else "stored"
    return "already_refused" if duplicate else "refused"


async def recover(
    settings: NodeSettings, *, from_seq: int = 1, to_seq: int | None = None
) -> Recovery:
    """Replay ``INBOX_<party>`` from ``from_seq`` (to ``to_seq``) through the node's decision."""
    with HomeLock(settings.home):
        runtime = NodeRuntime(settings)
        await runtime.broker.connect()  # publishes and requests only: no subscriber runs
        try:
            return await _replay(runtime, from_seq, to_seq)
        finally:
            await runtime.broker.stop()
            runtime.store.close()


async def _replay(runtime: NodeRuntime, from_seq: int, to_seq: int | None) -> Recovery:
    party = runtime.party
    stream = subjects.inbox_stream(party)
    found = Recovery()
    seq = from_seq
    while to_seq is None or seq <= to_seq:
        request = {"seq": seq, "next_by_subj": subjects.inbox_filter(party)}
        reply = await runtime.broker.request(
            json.dumps(request).encode(), subjects.direct_get_subject(stream), timeout=10
        )
        headers = reply.headers or {}
        if "Nats-Sequence" not in headers:  # 404: no message at or after seq
            break
        seq = int(headers["Nats-Sequence"])
        if to_seq is not None and seq > to_seq:
            break
        d = Delivery(
            subject=headers["Nats-Subject"],
            data=bytes(reply.body),
            stream_seq=seq,
            num_delivered=1,
            stored_at=server_time(headers["Nats-Time-Stamp"]),
            final=False,  # what cannot be decided yet is parked, as a delivery would be
        )
        verdict = runtime.core.process(d)  # a refusal keeps the envelope for its copy
        found.outcomes[_outcome(verdict.action, verdict.duplicate, verdict.deferred)] += 1
        found.scanned += 1
        found.first_seq = found.first_seq or seq
        found.last_seq = seq
        seq += 1
    # the copies of what it refused, filed now (once: a filed copy is not filed again); what
    # the hub does not take now, the running node files
    found.quarantine_held = await runtime.quarantines.file_held()
    log.info("inbox_recovered", party=party, **found.to_json())
    return found
