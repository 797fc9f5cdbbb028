"""The audit recorder without a broker: parking, budgets, release, give-up, key validity."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from schemas import ReasonCode
from schemas.audit import AuditEvent, EventType, UnreadableEnvelope
from services.audit import recorder as recorder_module
from services.audit.log import AuditLog
from services.audit.parking import Budget
from services.audit.recorder import Recorder
from services.core.envelope import peek_header, verify_sender
from services.core.events import (
    EventError,
    make_event,
    make_unreadable,
    open_event,
    sign_event,
    signature_digest,
)
from services.core.keys import NodeKeys
from tests.builders import NOW, InMemoryDirectory, directory_of, party, sealed

MEX, USA = party("MEX"), party("USA")


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def envelope() -> bytes:
    return sealed(sender=MEX, to=[USA], now=NOW)


def filed(
    by: NodeKeys, env: bytes, *, kind: EventType = EventType.DELIVERED, at: datetime = NOW
) -> bytes:
    """``by``'s signed event about ``env`` (which need not have reached the log)."""
    event = make_event(
        kind, peek_header(env), actor=by.party, envelope_sha256=hashlib.sha256(env).hexdigest(),
        signature_sha256=signature_digest(env), at=at,
    )  # fmt: skip
    return sign_event(event, by.signing)


def inbox(env: bytes) -> str:
    return f"inbox.USA.MEX.{hashlib.sha256(env).hexdigest()[:16]}"


def events_subject(who: str) -> str:
    return f"audit.events.{who}.{os.urandom(4).hex()}"


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.sqlite")


def recorder(log: AuditLog, clock: Clock, budget: Budget, directory: object = None) -> Recorder:
    d = directory or directory_of(MEX, USA)
    return Recorder(log, lambda: d, budget, clock)  # type: ignore[arg-type, return-value]


def test_an_event_before_its_envelope_is_parked_then_recorded_when_the_envelope_arrives(
    log: AuditLog,
) -> None:
    r = recorder(log, Clock(), Budget())
    env = envelope()
    assert r.take(events_subject("USA"), filed(USA, env), NOW, 1) == 0
    assert log.size == 0 and r.parking.usage("USA") == (1, len(filed(USA, env)))
    assert r.take(inbox(env), env, NOW, 2) == 2  # the stored leaf, and the event it released
    assert sorted(e.event.value for _, e in log.leaves_of(peek_header(env).msg_id)) == [
        "delivered",
        "stored",
    ]
    assert r.parking.count() == 0


def test_a_partys_parked_records_are_bounded_by_its_budget_and_count_against_it_alone(
    log: AuditLog,
) -> None:
    r = recorder(log, Clock(), Budget(max_parked=3, unmatched_per_minute=100))
    for seq in range(1, 11):  # MEX files ten events about envelopes the log never saw
        r.take(events_subject("MEX"), filed(MEX, envelope(), kind=EventType.OPENED), NOW, seq)
    assert r.parking.usage("MEX")[0] == 3
    # the newest wait (a legitimate event waits a moment for the envelope right behind it)
    assert sorted(p.stream_seq for p in r.parking.due(float("inf"), 10)) == [8, 9, 10]
    # the seven oldest, displaced, are recorded at once as what they are
    alarms = r.parking.party_alarms("MEX")
    assert [(a.what, a.count) for a in alarms] == [("unmatched_event", 7)]
    unmatched = [e for _, e in log.events("MEX") if isinstance(e, AuditEvent)]
    assert len(unmatched) == 7
    assert {(e.event, e.claimed) for e in unmatched} == {(EventType.UNMATCHED, EventType.OPENED)}
    # USA's own budget is untouched by MEX's flood
    r.take(events_subject("USA"), filed(USA, envelope()), NOW, 11)
    assert r.parking.usage("USA")[0] == 1


def test_parked_records_past_their_age_end_as_unmatched_leaves_within_the_rate_and_counted(
    log: AuditLog,
) -> None:
    clock = Clock()
    r = recorder(log, clock, Budget(max_age_s=10, unmatched_per_minute=2))
    for seq in range(1, 4):
        r.take(events_subject("MEX"), filed(MEX, envelope(), kind=EventType.OPENED), NOW, seq)
    assert r.tick() == 0 and r.parking.count() == 3  # nothing due yet
    clock.t += 11
    r.tick()
    assert r.parking.count() == 0
    leaves = [e for _, e in log.events()]
    assert len(leaves) == 2  # the rate: two leaves a minute for MEX
    assert all(isinstance(e, AuditEvent) and e.event is EventType.UNMATCHED for e in leaves)
    assert log.events("USA") == []  # filed under MEX alone: its claims about USA prove nothing
    [alarm] = r.parking.party_alarms("MEX")
    assert (alarm.what, alarm.count, alarm.first_seq, alarm.last_seq) == (
        "unmatched_event",
        3,
        1,
        3,
    )


def test_a_retry_on_the_schedule_backs_off_and_stops_at_the_age_budget(log: AuditLog) -> None:
    clock = Clock()
    t0 = clock.t
    r = recorder(log, clock, Budget(max_age_s=5, first_retry_s=1, max_retry_s=60))
    r.take(events_subject("MEX"), filed(MEX, envelope()), NOW, 1)
    tried_at = []
    for step in range(1, 8):
        clock.t = t0 + step
        if r.parking.due(clock.t, 10):
            tried_at.append(step)
        r.tick()
    assert tried_at == [1, 3, 5]  # after 1 s, then 2 s later, then the end of the 5 s budget
    assert r.parking.count() == 0 and len(log.events("MEX")) == 1  # ended as unmatched


def test_an_envelope_under_a_key_the_directory_does_not_know_waits_for_the_directory(
    log: AuditLog,
) -> None:
    current = [directory_of(USA)]  # MEX's key is not known yet
    r = Recorder(log, lambda: current[0], Budget(), Clock())  # type: ignore[arg-type, return-value]
    env = envelope()
    assert r.take(inbox(env), env, NOW, 1) == 0
    [parked] = r.parking.waiting_for_keys()
    assert parked.party == "MEX" and parked.waits_for.startswith("key/MEX/")
    r.tick()
    assert log.size == 0  # the same directory: still waiting
    current[0] = directory_of(MEX, USA)  # the directory changed
    assert r.tick() == 1 and log.size == 1 and r.parking.count() == 0


def test_an_event_is_accepted_only_under_a_key_valid_and_not_revoked_at_its_time() -> None:
    env = envelope()
    at = NOW

    def directory(**record: datetime | None) -> InMemoryDirectory:
        return InMemoryDirectory().add(USA, **record)  # type: ignore[arg-type]

    assert open_event(filed(USA, env, at=at), "USA", directory()).actor == "USA"
    with pytest.raises(EventError) as refused:
        open_event(filed(USA, env, at=at), "USA", directory(revoked_at=at - timedelta(hours=1)))
    assert refused.value.reason is ReasonCode.REVOKED_SENDER_KEY
    # backdated before the revocation, but the broker stored it after: still refused
    backdated = filed(USA, env, at=at - timedelta(hours=2))
    revoked = directory(revoked_at=at - timedelta(hours=1))
    with pytest.raises(EventError) as refused:
        open_event(backdated, "USA", revoked, stored_at=at)
    assert refused.value.reason is ReasonCode.REVOKED_SENDER_KEY
    assert open_event(backdated, "USA", revoked).actor == "USA"  # what the key could sign then
    with pytest.raises(EventError) as refused:
        open_event(filed(USA, env, at=at), "USA", directory(valid_from=at + timedelta(days=1)))
    assert refused.value.reason is ReasonCode.SENDER_KEY_NOT_VALID
    with pytest.raises(EventError) as refused:
        open_event(filed(USA, env, at=at), "USA", directory(valid_until=at))
    assert refused.value.reason is ReasonCode.SENDER_KEY_NOT_VALID


def test_an_event_under_a_revoked_key_is_refused_and_counted_against_its_party(
    log: AuditLog,
) -> None:
    d = directory_of(MEX).add(USA, revoked_at=NOW - timedelta(minutes=5))
    r = recorder(log, Clock(), Budget(), d)
    env = envelope()
    r.take(inbox(env), env, NOW, 1)
    assert r.take(events_subject("USA"), filed(USA, env), NOW, 2) == 0
    assert log.size == 1  # the stored leaf only
    assert [(a.what, a.count) for a in r.parking.party_alarms("USA")] == [
        ("event_revoked_sender_key", 1)
    ]


def test_an_unreadable_envelope_is_a_leaf_filed_under_the_node_that_refused_it(
    log: AuditLog,
) -> None:
    r = recorder(log, Clock(), Budget())
    garbage = b"{not an envelope"
    event = make_unreadable(
        actor="USA", publisher="MEX", envelope=garbage, stream_seq=7,
        reason=ReasonCode.MALFORMED, at=NOW,
    )  # fmt: skip
    assert r.take(events_subject("USA"), sign_event(event, USA.signing), NOW, 1) == 1
    [(_, leaf)] = log.events("USA")
    assert isinstance(leaf, UnreadableEnvelope)
    assert leaf.envelope_sha256 == hashlib.sha256(garbage).hexdigest()
    assert (leaf.actor, leaf.publisher, leaf.reason) == ("USA", "MEX", ReasonCode.MALFORMED)
    assert log.events("MEX") == []  # the publisher's records hold nothing USA claims of it
    assert log.verify("x", USA.signing.public().ed25519) == []  # the columns match the leaf


def test_garbage_on_a_partys_event_subject_is_counted_against_that_party(log: AuditLog) -> None:
    r = recorder(log, Clock(), Budget())
    for seq in range(1, 6):
        assert r.take(events_subject("MEX"), os.urandom(40), NOW, seq) == 0
    assert [(a.what, a.count) for a in r.parking.party_alarms("MEX")] == [("event_malformed", 5)]
    assert r.parking.count() == 0 and log.size == 0


def test_an_envelope_to_several_states_is_verified_once_and_stored_once_per_recipient(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    col = party("COL")
    r = recorder(log, Clock(), Budget(), directory_of(MEX, USA, col))
    calls: list[bytes] = []

    def counting(data: bytes, **kw: object) -> object:
        calls.append(data)
        return verify_sender(data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(recorder_module, "verify_sender", counting)
    env = sealed(sender=MEX, to=[USA, col], now=NOW)
    sha = hashlib.sha256(env).hexdigest()[:16]
    assert r.take(f"inbox.USA.MEX.{sha}", env, NOW, 1) == 1
    assert r.take(f"inbox.COL.MEX.{sha}", env, NOW, 2) == 1
    assert log.size == 2 and len(calls) == 1  # one leaf per recipient, one signature check


def test_a_copy_stored_after_its_senders_key_was_revoked_is_refused_though_a_copy_verified(
    log: AuditLog,
) -> None:
    col = party("COL")
    current = [directory_of(MEX, USA, col)]
    r = Recorder(log, lambda: current[0], Budget(), Clock())  # type: ignore[arg-type, return-value]
    env = sealed(sender=MEX, to=[USA, col], now=NOW)
    sha = hashlib.sha256(env).hexdigest()[:16]
    assert r.take(f"inbox.USA.MEX.{sha}", env, NOW, 1) == 1
    # MEX's key is revoked before the second copy was stored: the cache does not skip check 2
    current[0] = directory_of(USA, col).add(MEX, revoked_at=NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=2)
    assert r.take(f"inbox.COL.MEX.{sha}", env, later, 2) == 0
    assert log.size == 1
    assert [(a.what, a.count) for a in r.parking.party_alarms("MEX")] == [
        ("envelope_revoked_sender_key", 1)
    ]
