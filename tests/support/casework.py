"""Nodes' cores over their own SQLite stores, exchanging envelopes without a broker, on one clock.

For the procedures' unit tests: what a node queues, :meth:`Network.deliver` hands to each
recipient's ``NodeCore.process`` exactly as the node's inbox handler would (subject naming the
publisher, a stream sequence, the delivery count), and the recipients' receipts and rejections back.
The broker's part is covered by the integration tests; here time and order are the test's to set.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.core.directory import Directory, DirectoryTrust, registration_request
from services.core.envelope import peek_header
from services.core.keys import NodeKeys
from services.directory.service import DirectoryService
from services.node.core import Action, Delivery, NodeCore, Verdict
from services.node.parking import DeferralBudget
from services.node.store import OutboxItem, Store
from services.node.workflows.tracing import DEFAULT_POLICY, TracingPolicy
from tests.builders import party
from tests.support.hub import details

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class Handled:
    """One delivery and what the recipient's node decided."""

    sender: str
    recipient: str
    kind: str
    msg_id: str
    verdict: Verdict


#: Which queued (sender, recipient, kind) to hold back in this round of deliveries.
Hold = Callable[[str, str, str], bool]


@dataclass
class Network:
    tmp: Path
    clock: Clock
    policy: TracingPolicy = DEFAULT_POLICY
    max_deliver: int = 3
    cores: dict[str, NodeCore] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _attempts: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        tmp: Path,
        parties: Iterable[str],
        clock: Clock | None = None,
        policy: TracingPolicy = DEFAULT_POLICY,
    ) -> Network:
        clock = clock or Clock()
        DirectoryService.create_root_key(tmp / "root.key.json")
        service = DirectoryService.open(tmp / "dir", tmp / "root.key.json", clock=lambda: T0)
        keys: dict[str, NodeKeys] = {}
        for code in parties:
            keys[code] = party(code)
            service.register(registration_request(keys[code], details(code), T0))
        trust = DirectoryTrust(service.root)
        trust.seed(service.all_signed())
        net = cls(tmp, clock, policy)
        for code, k in keys.items():
            net.cores[code] = net._core(k, trust.directory())
        return net

    def _core(self, keys: NodeKeys, directory: Directory) -> NodeCore:
        store = Store(self.tmp / f"{keys.party}.sqlite")
        return NodeCore(
            keys, directory, store, clock=self.clock, tracing_policy=self.policy,
            deferral=DeferralBudget(max_attempts=self.max_deliver),
        )  # fmt: skip

    def __getitem__(self, code: str) -> NodeCore:
        return self.cores[code]

    def restart(self, code: str) -> NodeCore:
        """The node's process stops and starts again: a new core over the same store file."""
        old = self.cores[code]
        old.store.close()
        self.cores[code] = self._core(old.keys, old.directory)
        return self.cores[code]

    def deliver(self, hold: Hold | None = None, *, rounds: int = 20) -> list[Handled]:
        """Deliver everything queued (and what that makes the recipients send), in rounds, until
        nothing is left but what ``hold`` holds back. Each round first tries again what each node
        parked (as its parking lot would when due), then hands over what the outboxes hold; a
        parked envelope is tried up to ``max_deliver`` times in all."""
        handled: list[Handled] = []
        for _ in range(rounds):
            moved = False
            for code, core in self.cores.items():
                # due now, as if its schedule came due (the lot runs on the node's clock)
                core.parking.wake(as_scheduled=True)
                for p, _d, verdict in core.retry_parked():
                    moved = moved or verdict.action is not Action.NAK
                    kind = peek_header(p.data).kind
                    handled.append(Handled(p.publisher, code, kind, peek_header(p.data).msg_id,
                                           verdict))  # fmt: skip
            for sender, core in list(self.cores.items()):
                for item in core.store.due(float("inf"), 10_000):
                    kind = peek_header(item.envelope).kind
                    if hold is not None and hold(sender, item.recipient, kind):
                        continue
                    moved = True
                    handled.append(self._hand(sender, item.recipient, kind, item))
            if not moved:
                break
        return handled

    def _hand(self, sender: str, recipient: str, kind: str, item: OutboxItem) -> Handled:
        key = (item.msg_id, recipient)
        self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
        delivery = self._delivery(
            sender, recipient, item.envelope, attempt, attempt >= self.max_deliver
        )
        verdict = self.cores[recipient].process(delivery)
        if verdict.action is not Action.NAK:  # settled at the hub: off the sender's outbox
            self.cores[sender].store.mark_sent(
                [(item.msg_id, recipient, delivery.stream_seq)], self.clock()
            )
        return Handled(sender, recipient, kind, item.msg_id, verdict)

    def _delivery(
        self, sender: str, recipient: str, envelope: bytes, attempt: int, final: bool
    ) -> Delivery:
        """The envelope as ``recipient``'s inbox consumer delivers it, published by ``sender``."""
        return Delivery(
            subject=f"inbox.{recipient}.{sender}.{peek_header(envelope).msg_id}",
            data=envelope,
            stream_seq=next(self._seq),
            num_delivered=attempt,
            stored_at=self.clock(),
            final=final,
        )

    def inject(
        self, sender: str, recipient: str, envelope: bytes, *, final: bool = True
    ) -> Verdict:
        """Hand ``recipient`` an envelope as if ``sender``'s account had published it."""
        return self.cores[recipient].process(self._delivery(sender, recipient, envelope, 1, final))
