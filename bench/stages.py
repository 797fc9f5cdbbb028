"""Where a message's time goes between MEX and USA, stage by stage (used by ``bench/e2e.py``).

The two nodes' own objects are wrapped on their instances (nothing in the services changes):
``NodeCore.compose`` is timed by the caller, ``OutboxPublisher.publish`` gives the publish and its
PubAck, and ``InboxBatcher.decide`` at each node the moment a delivery reached the handler and the
moment its group committed. Times are ``perf_counter`` seconds, per msg_id.

Stages (each a difference of two of those moments):

* compose: ``compose`` at MEX (validate, seal, one SQLite commit);
* outbox wait: from the commit to the outbox's publish of it;
* publish->PubAck: the publish to USA's inbox stream, until its PubAck (the hub's fsync);
* delivery: from the PubAck to USA's handler (the pull consumer's fetch);
* decide+commit: USA opens, decides and commits its group (with the receipt queued), until the
  handler is told it is committed (and may acknowledge);
* receipt: from that commit to MEX's commit of USA's receipt (USA's outbox, the hub, MEX's inbox).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from services.core.envelope import EnvelopeError, peek_header
from services.node.app import NodeRuntime
from services.node.core import Action, Delivery, Verdict

NAMES = (
    ("compose", "c0", "c1"),
    ("outbox wait", "c1", "p0"),
    ("publish->PubAck", "p0", "p1"),
    ("delivery", "p1", "d0"),
    ("decide+commit", "d0", "d1"),
    ("receipt", "d1", "r1"),
)
TOTAL = ("stored at USA", "c0", "d1")


def _msg_id(subject: str) -> str:
    return subject.rsplit(".", 1)[-1]


Decide = Callable[[Delivery], Awaitable[Verdict]]


def at_delivery(decide: Decide, marks: dict[str, dict[str, float]]) -> Decide:
    """USA's inbox ``decide``, noting for each message stored when its delivery reached the
    handler (``d0``) and when its group committed (``d1``)."""

    async def timed(d: Delivery) -> Verdict:
        t0 = time.perf_counter()
        verdict = await decide(d)  # returns once the delivery's group has committed
        if verdict.action is Action.ACK and not verdict.duplicate:
            m = marks.setdefault(_msg_id(d.subject), {})
            m["d0"], m["d1"] = t0, time.perf_counter()
        return verdict

    return timed


class Stages:
    """Per-message timestamps of one run between ``mex`` and ``usa``; with ``usa`` None (USA's
    node in its own process) its marks are added by ``merge`` (``bench/usa_node.py``)."""

    def __init__(self, mex: NodeRuntime, usa: NodeRuntime | None) -> None:
        self.t: dict[str, dict[str, float]] = defaultdict(dict)
        publish = mex.outbox.publish
        mex_decide = mex.inbox.decide

        async def timed_publish(item: Any) -> Any:
            marks = self.t[item.msg_id]
            marks.setdefault("p0", time.perf_counter())
            ack = await publish(item)
            marks["p1"] = time.perf_counter()
            return ack

        async def at_mex(d: Delivery) -> Verdict:
            verdict = await mex_decide(d)
            if verdict.action is Action.ACK and not verdict.duplicate:
                at = time.perf_counter()
                try:  # the receipt names what it answers (read after the clock is taken)
                    answered = peek_header(d.data).in_reply_to
                except EnvelopeError:
                    answered = None
                if answered is not None:
                    self.t[answered]["r1"] = at
            return verdict

        mex.outbox.publish = timed_publish  # type: ignore[method-assign]
        mex.inbox.decide = at_mex  # type: ignore[method-assign]
        if usa is not None:
            usa.inbox.decide = at_delivery(usa.inbox.decide, self.t)  # type: ignore[method-assign]

    def merge(self, marks: dict[str, dict[str, float]]) -> None:
        """Add marks taken elsewhere (USA's ``d0`` and ``d1`` from its own process)."""
        for msg_id, m in marks.items():
            self.t[msg_id].update(m)

    def composed(self, compose: Callable[[], str]) -> str:
        """Call ``compose`` (returning a msg_id) and note when it started and ended."""
        t0 = time.perf_counter()
        msg_id = compose()
        self.t[msg_id].update(c0=t0, c1=time.perf_counter())
        return msg_id

    def stored(self, msg_id: str) -> float | None:
        """Seconds from compose at MEX to the commit at USA, if it got there."""
        m = self.t.get(msg_id, {})
        return m["d1"] - m["c0"] if "d1" in m and "c0" in m else None

    def clear(self) -> None:
        self.t.clear()

    def table(
        self, ids: Iterable[str], extra: tuple[tuple[str, str, str], ...] = ()
    ) -> list[tuple[str, float, float]]:
        """(stage, p50 ms, p99 ms) over ``ids``, the stages in order, then the total and
        ``extra`` (name, from mark, to mark)."""
        marks = [self.t[i] for i in ids if i in self.t]
        out = []
        for name, a, b in (*NAMES, TOTAL, *extra):
            samples = sorted(m[b] - m[a] for m in marks if a in m and b in m)
            if len(samples) >= 2:
                p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
                out.append((name, statistics.median(samples) * 1e3, p99 * 1e3))
            else:
                out.append((name, float("nan"), float("nan")))
        return out


class Pauses:
    """The garbage collector's pauses while a phase runs (``gc.callbacks``), in this process."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._t0 = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._t0)

    def reset(self) -> None:
        self.pauses.clear()

    def summary(self) -> str:
        if not self.pauses:
            return "no collection"
        total, worst = sum(self.pauses) * 1e3, max(self.pauses) * 1e3
        return f"{len(self.pauses)} collections, {total:.0f} ms in all, the longest {worst:.1f} ms"


#: one per process: the collector is the process's
PAUSES = Pauses()


def print_table(title: str, rows: list[tuple[str, float, float]]) -> None:
    print(title)
    print(f"    {'stage':<18} {'p50 ms':>7} {'p99 ms':>7}")
    for name, p50, p99 in rows:
        print(f"    {name:<18} {p50:7.2f} {p99:7.2f}")
