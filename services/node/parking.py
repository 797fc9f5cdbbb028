"""Deliveries that cannot be decided yet, parked in the node's own store instead of the hub's
in-flight window.

An envelope signed with a key this node's directory does not list yet, or a procedure step whose
predecessor has not arrived, may become acceptable later. Asking the hub to deliver it again
(NAK) would keep it in the consumer's shared window of unacknowledged messages, where a few
hundred of them, from one state, stop every other state's traffic (``max_ack_pending``). So the
node acknowledges it at the hub and keeps it here, under a budget of the *publishing* account (a
broker fact, not a header claim): at most ``max_per_sender`` envelopes and ``max_bytes_per_sender``
bytes each, for at most ``max_age_s``. It is tried again on a schedule, when the directory changes
and when a message of its case arrives; at the end of its budget it is refused with its reason
code, quarantined and recorded, like any refusal. A publisher over its budget has its new
deferrable envelopes refused at once: its flood costs it, no one else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from services.node.store import Parked, Store

#: Seconds before a parked envelope is tried again, by attempt: about two hours in all, long
#: enough for a directory update to reach this node or a crossing message to arrive.
RETRY_SCHEDULE_S = (1.0, 5.0, 30.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


@dataclass(frozen=True)
class DeferralBudget:
    """What one publishing state may have parked at a node at once."""

    max_per_sender: int = 100
    max_bytes_per_sender: int = 16 * 1024 * 1024
    max_age_s: float = 2 * 3600.0
    #: tries in all, the first included: the hub's ``max_deliver`` of a deferrable envelope
    max_attempts: int = len(RETRY_SCHEDULE_S) + 1


DEFAULT_DEFERRAL = DeferralBudget()


class SpentBudgets:
    """One warning (and one signed rejection) per publisher and minute while its deferral budget
    is spent, with the count refused since the last one: a flood of thousands is a few lines in
    the log and a few answers on the hub, not thousands."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._since: dict[str, tuple[float, int]] = {}

    def note(self, publisher: str) -> int | None:
        """Count one refusal. For the first of the minute (the one that is reported), how many
        were refused since the last report, this one included; else None. The caller logs it."""
        now = time.monotonic()
        last, count = self._since.get(publisher, (float("-inf"), 0))
        count += 1
        if now - last >= self.every_s:
            self._since[publisher] = (now, 0)
            return count
        self._since[publisher] = (last, count)
        return None

    def state(self) -> dict[str, tuple[float, int]]:
        """What :meth:`restore` takes back to: the counts as they stand."""
        return dict(self._since)

    def restore(self, state: dict[str, tuple[float, int]]) -> None:
        """Forget what was noted since ``state``: the refusals it counted were rolled back."""
        self._since = dict(state)


def next_delay(attempts: int) -> float:
    return RETRY_SCHEDULE_S[min(max(attempts, 1), len(RETRY_SCHEDULE_S)) - 1]


class ParkingLot:
    """The deferral policy over the store's ``parked`` table: who has room, when to try again."""

    def __init__(self, store: Store, budget: DeferralBudget) -> None:
        self.store = store
        self.budget = budget

    def holds(self, envelope_sha256: str, publisher: str) -> bool:
        return self.store.parked.holds(envelope_sha256, publisher)

    def room_for(self, publisher: str, size: int) -> bool:
        """Whether ``publisher``'s budget takes one more envelope of ``size`` bytes."""
        count, used = self.store.parked.usage(publisher)
        b = self.budget
        return count < b.max_per_sender and used + size <= b.max_bytes_per_sender

    def park(
        self,
        *,
        stream_seq: int,
        envelope_sha256: str,
        publisher: str,
        subject: str,
        data: bytes,
        stored_at: datetime,
        reason: str,
        detail: str,
        case_id: str | None,
    ) -> None:
        now = time.time()
        self.store.parked.add(
            stream_seq=stream_seq, envelope_sha256=envelope_sha256, publisher=publisher,
            subject=subject, data=data, stored_at=stored_at, reason=reason, detail=detail,
            case_id=case_id, parked_at=now, next_attempt_at=now + next_delay(1),
        )  # fmt: skip

    def due(self, now: float, limit: int = 64) -> list[Parked]:
        return self.store.parked.due(now, limit)

    def next_due_at(self) -> float | None:
        return self.store.parked.next_due_at()

    def wake(
        self, *, reason: str | None = None, case_id: str | None = None, as_scheduled: bool = False
    ) -> int:
        """Make parked envelopes due now: those waiting for ``reason``, or of ``case_id``. A
        wake-up does not use up an attempt, unless ``as_scheduled`` (their schedule came due)."""
        return self.store.parked.make_due(
            time.time(), reason=reason, case_id=case_id, as_scheduled=as_scheduled
        )

    def retry_later(self, p: Parked, detail: str) -> None:
        """Still undecided: after a scheduled try, the next one on the schedule; after a wake-up,
        back to the try it was scheduled for, no attempt spent."""
        now = time.time()
        if not p.scheduled(now):
            self.store.parked.reschedule(p, p.attempts, p.scheduled_at, detail)
            return
        attempts = p.attempts + 1
        self.store.parked.reschedule(p, attempts, now + next_delay(attempts), detail)

    def release(self, p: Parked) -> None:
        """Forget a parked envelope once it is decided (stored, or refused: its refusal keeps the
        envelope until the quarantine copy is filed)."""
        self.store.parked.remove(p)

    def by_publisher(self) -> dict[str, int]:
        return self.store.parked.by_publisher()

    def __iter__(self) -> Iterator[Parked]:
        return iter(self.store.parked.all())


__all__ = [
    "DEFAULT_DEFERRAL",
    "RETRY_SCHEDULE_S",
    "DeferralBudget",
    "Parked",
    "ParkingLot",
    "SpentBudgets",
    "next_delay",
]
