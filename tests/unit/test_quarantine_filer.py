"""The quarantine copies of refused envelopes: the refusal keeps the envelope in the node's store
(so the delivery can be terminated at once), the filer files it with its reason and marks it
filed in one commit with its signed event, retries what the hub did not take, files a copy once,
and waits for a busy inbox only so long."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from schemas import HandlingCode
from schemas.audit import AuditEvent, EventType
from schemas.registry import example_body
from services.core.encoding import unb64u
from services.core.envelope import peek_header, seal
from services.core.events import SignedEvent
from services.node import quarantine
from services.node.core import Action, Delivery, NodeCore
from services.node.quarantine import QuarantineFiler
from services.node.store import QuarantineItem, Store
from tests.support.casework import T0, Network


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA"])


class Hub:
    """The filer's publish: records what it is given; raises while ``away``."""

    def __init__(self) -> None:
        self.away = False
        self.filed: list[tuple[bytes, str, str, dict[str, str]]] = []

    async def publish(
        self, data: bytes, subject: str, stream: str, headers: dict[str, str], timeout: float
    ) -> object:
        if self.away:
            raise ConnectionError("the hub is away")
        self.filed.append((data, subject, stream, headers))
        return object()


def filer(core: NodeCore, hub: Hub, busy: bool = False) -> QuarantineFiler:
    def event_of(item: QuarantineItem) -> tuple[str, bytes]:
        return core.event(
            EventType.QUARANTINED, peek_header(item.envelope), item.envelope, reason=item.reason
        )

    return QuarantineFiler(
        core.store, core.party, hub.publish, event_of, timeout_s=1.0, concurrency=8,  # type: ignore[arg-type]
        poll_s=0.05, inbox_busy=lambda within_s: busy,
    )  # fmt: skip


def refuse(core: NodeCore, seq: int, envelope: bytes) -> Delivery:
    d = Delivery(f"inbox.USA.MEX.m{seq}", envelope, seq, 1, T0, final=True)
    verdict = core.process(d)
    assert verdict.action is Action.TERM
    return d


def tampered(net: Network) -> bytes:
    """A sealed envelope from MEX with one ciphertext byte changed: it parses, names its message,
    and fails its signature."""
    envelope = bytearray(
        seal(
            example_body("info.trafficking_routes"), sender=net["MEX"].keys,
            recipients=[net["USA"].keys.current_encryption.public()], handling=HandlingCode.H1,
            now=T0,
        )
    )  # fmt: skip
    at = envelope.index(b'"ciphertext":"') + 20
    envelope[at] = ord("A") if envelope[at] != ord("A") else ord("B")
    return bytes(envelope)


def due_now(store: Store) -> None:
    """Every held copy's backoff over: due at once."""
    held = store.quarantine_outbox.due(float("inf"), 100)
    store.quarantine_outbox.retry([(i.stream_seq, i.envelope_sha256, "", 0.0) for i in held])


def queued_events(store: Store) -> list[AuditEvent]:
    out = []
    for _, payload, _ in store.due_events(float("inf"), 100):
        signed = SignedEvent.model_validate_json(payload)
        out.append(AuditEvent.model_validate_json(unb64u(signed.event)))
    return out


async def test_a_refusal_keeps_the_envelope_until_the_hub_stored_its_copy(net: Network) -> None:
    usa, hub = net["USA"], Hub()
    envelope = tampered(net)
    d = refuse(usa, 7, envelope)
    [refusal] = usa.store.rejections()
    assert refusal["quarantined"] == 0 and usa.store.quarantine_outbox.pending() == 1

    hub.away = True
    await filer(usa, hub).drain_once()
    assert hub.filed == [] and usa.store.quarantine_outbox.pending() == 1
    [item] = usa.store.quarantine_outbox.due(float("inf"), 10)
    assert item.attempts == 1  # retried after its backoff, not given up

    hub.away = False
    before = {e.event for e in queued_events(usa.store)}
    await filer(usa, hub).drain_once()
    assert hub.filed == []  # not due before its backoff ends
    due_now(usa.store)
    await filer(usa, hub).drain_once()
    [(data, subject, stream, headers)] = hub.filed
    sha = hashlib.sha256(envelope).hexdigest()
    reason = refusal["reason"]
    assert data == envelope and stream == "QUARANTINE_USA"
    assert subject == f"quarantine.USA.{reason}"
    assert headers["Nats-Msg-Id"] == f"7-{sha[:32]}"
    assert headers["Cifta-Reason"] == reason and headers["Cifta-Subject"] == d.subject
    assert headers["Cifta-Stream-Seq"] == "7" and headers["Cifta-Detail"] == refusal["detail"]
    assert usa.store.rejections()[0]["quarantined"] == 1
    assert usa.store.quarantine_outbox.pending() == 0
    assert EventType.QUARANTINED not in before
    assert EventType.QUARANTINED in {e.event for e in queued_events(usa.store)}


async def test_a_redelivery_of_a_filed_refusal_is_not_filed_again(net: Network) -> None:
    usa, hub = net["USA"], Hub()
    envelope = tampered(net)
    refuse(usa, 3, envelope)
    await filer(usa, hub).drain_once()
    refuse(usa, 3, envelope)  # the hub delivers it again (a TERM lost in a crash)
    assert usa.store.quarantine_outbox.pending() == 0
    await filer(usa, hub).drain_once()
    assert len(hub.filed) == 1


async def test_a_held_copy_outlives_the_node(net: Network) -> None:
    envelope = tampered(net)
    refuse(net["USA"], 5, envelope)
    usa, hub = net.restart("USA"), Hub()  # stopped (or killed) before the copy was filed
    [item] = usa.store.quarantine_outbox.due(float("inf"), 10)
    assert item.stream_seq == 5 and item.envelope == envelope
    await filer(usa, hub).drain_once()
    assert [data for data, *_ in hub.filed] == [envelope]
    assert usa.store.rejections()[0]["quarantined"] == 1


async def test_the_filer_waits_for_a_busy_inbox_only_so_long(
    net: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    usa, hub = net["USA"], Hub()
    refuse(usa, 1, tampered(net))
    monkeypatch.setattr(quarantine, "YIELD_S", 0.01)
    monkeypatch.setattr(quarantine, "MAX_YIELD_S", 0.2)
    busy = filer(usa, hub, busy=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await busy.drain_once()
    assert hub.filed == []  # the inbox is deciding deliveries: the copy waits
    while not hub.filed:
        await busy.drain_once()
    assert loop.time() - started >= 0.2  # filed once the longest wait was over
    assert usa.store.quarantine_outbox.pending() == 0
    refuse(usa, 2, tampered(net))
    idle = Hub()
    await filer(usa, idle).drain_once()  # an idle inbox: filed at once
    assert len(idle.filed) == 1 and usa.store.quarantine_outbox.pending() == 0


async def test_a_refusal_left_without_its_copy_by_an_older_node_is_held_again_on_redelivery(
    net: Network,
) -> None:
    """A node of schema 13 TERMed nothing before its copy was filed, but could leave a refusal
    unquarantined and its envelope nowhere (its last copy attempt failed): the envelope comes
    back from the inbox stream (`cifta node recover`) and is held for its copy then."""
    usa, hub = net["USA"], Hub()
    envelope = tampered(net)
    refuse(usa, 9, envelope)
    with usa.store.tx():  # as an older node left it: refused, no copy, no envelope held
        usa.store.db.execute("DELETE FROM quarantine_outbox")
    assert usa.store.quarantine_outbox.unfiled_without_envelope() == 1
    refuse(usa, 9, envelope)  # read again from the stream
    assert usa.store.quarantine_outbox.unfiled_without_envelope() == 0
    await filer(usa, hub).drain_once()
    assert [data for data, *_ in hub.filed] == [envelope]


async def test_a_copy_whose_event_cannot_be_signed_is_retried_and_holds_up_no_other(
    net: Network,
) -> None:
    usa, hub = net["USA"], Hub()
    bad, good = tampered(net), tampered(net)
    refuse(usa, 1, bad)
    refuse(usa, 2, good)

    def event_of(item: QuarantineItem) -> tuple[str, bytes]:
        if item.envelope == bad:
            raise ValueError("no signing key")
        header = peek_header(item.envelope)
        return usa.event(EventType.QUARANTINED, header, item.envelope, reason=item.reason)

    quarantines = QuarantineFiler(
        usa.store, usa.party, hub.publish, event_of, timeout_s=1.0, concurrency=8,  # type: ignore[arg-type]
        poll_s=0.05,
    )  # fmt: skip
    await quarantines.drain_once()
    [held] = usa.store.quarantine_outbox.due(float("inf"), 10)
    assert held.envelope == bad and held.attempts == 1  # tried again after its backoff
    assert [r["quarantined"] for r in usa.store.rejections()] == [0, 1]


async def test_recovery_files_what_is_held_and_reports_what_the_hub_did_not_take(
    net: Network,
) -> None:
    usa, hub = net["USA"], Hub()
    for seq in (1, 2):
        refuse(usa, seq, tampered(net))
    hub.away = True
    assert await filer(usa, hub).file_held() == 2
    hub.away = False
    due_now(usa.store)
    assert await filer(usa, hub).file_held() == 0
    assert len(hub.filed) == 2
