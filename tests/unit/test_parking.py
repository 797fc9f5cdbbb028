"""The node's parking lot: what cannot be decided yet waits under its publisher's budget, and
neither a wake-up nor another envelope's fault decides its fate."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import HandlingCode, ReasonCode
from schemas.registry import example_body
from services.core.envelope import seal
from services.core.keys import NodeKeys
from services.node.core import Action, Delivery, NodeCore
from tests.support.casework import T0, Network


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA"])


def park_unknown_key_envelopes(net: Network, count: int) -> NodeCore:
    """``count`` envelopes from MEX under a key USA's directory does not list yet: parked."""
    usa = net["USA"]
    stranger = NodeKeys.generate("MEX")
    for seq in range(1, count + 1):
        envelope = seal(
            example_body("info.trafficking_routes"), sender=stranger,
            recipients=[usa.keys.current_encryption.public()], handling=HandlingCode.H1, now=T0,
        )  # fmt: skip
        d = Delivery(f"inbox.USA.MEX.m{seq}", envelope, seq, 1, T0, final=False)
        verdict = usa.process(d)
        assert verdict.action is Action.ACK and verdict.deferred
    return usa


def test_wake_ups_do_not_spend_a_parked_envelopes_attempts(net: Network) -> None:
    usa = park_unknown_key_envelopes(net, 1)
    for _ in range(3 * usa.parking.budget.max_attempts):  # directory updates, say, many of them
        usa.parking.wake(reason=ReasonCode.UNKNOWN_SENDER_KEY.value)
        [(_, _, verdict)] = usa.retry_parked()
        assert verdict.action is Action.NAK
    [parked] = list(usa.parking)
    assert parked.attempts == 1 and usa.store.rejections() == []


def test_scheduled_tries_do_spend_them_and_the_last_one_refuses(net: Network) -> None:
    usa = park_unknown_key_envelopes(net, 1)
    actions = []
    for _ in range(usa.parking.budget.max_attempts - 1):
        usa.parking.wake(as_scheduled=True)
        actions += [v.action for _, _, v in usa.retry_parked()]
    assert actions[-1] is Action.TERM and set(actions[:-1]) == {Action.NAK}
    [refusal] = usa.store.rejections()
    assert refusal["reason"] == ReasonCode.UNKNOWN_SENDER_KEY.value


def test_a_parked_envelope_that_fails_does_not_hold_up_the_others(
    net: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    usa = park_unknown_key_envelopes(net, 2)
    process = usa.process

    def failing_for_the_first(d: Delivery):  # type: ignore[no-untyped-def]
        if d.stream_seq == 1:
            raise ValueError("a fault met by this envelope alone")
        return process(d)

    monkeypatch.setattr(usa, "process", failing_for_the_first)
    usa.parking.wake(as_scheduled=True)
    results = {d.stream_seq: v for _, d, v in usa.retry_parked()}
    assert set(results) == {1, 2}  # the second was tried although the first failed
    assert results[1].reason is ReasonCode.PROCESSING_FAILED
    assert {p.stream_seq: p.attempts for p in usa.parking} == {1: 2, 2: 2}
