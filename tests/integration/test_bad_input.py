"""The bad-input corpus of design section 9, through a real hub and real nodes.

A misbehaving or compromised MEX publishes crafted envelopes into USA's inbox with MEX's own broker
credentials (all the broker lets it do). For each: USA records the refusal with its reason code,
files a quarantine copy, answers MEX with a signed rejection, and keeps running; nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal

import nats
import pytest

from schemas import Body, HandlingCode, ReasonCode
from schemas.protocol import Rejection
from services.core import connection, subjects
from services.core.directory import rotation_request
from services.core.envelope import MAX_ENVELOPE_BYTES, peek_header
from services.core.keys import NodeKeys
from services.hub import provision
from services.hub.credentials import PROVISION_USER
from services.node.app import NodeRuntime
from tests.builders import as_json, example_body, flip_byte, sealed, to_bytes, with_header
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report


class _UnheardOf(Body):
    KIND: ClassVar[str] = "info.unheard_of"
    kind: Literal["info.unheard_of"] = "info.unheard_of"


def corpus(hub: Hub, retired: NodeKeys) -> dict[str, tuple[ReasonCode, Callable[[], bytes]]]:
    mex, usa, col = hub.keys["MEX"], hub.keys["USA"], hub.keys["COL"]
    now = datetime.now(UTC)

    def good(**kw: object) -> bytes:
        kw.setdefault("now", now)
        return sealed(sender=mex, to=[usa], **kw)  # type: ignore[arg-type]

    def env_edit(edit: Callable[[dict], None]) -> bytes:  # type: ignore[type-arg]
        env = as_json(good())
        edit(env)
        return to_bytes(env)

    stranger = NodeKeys.generate("USA")  # a USA key USA does not hold
    return {
        "not JSON": (ReasonCode.MALFORMED, lambda: b"\x00garbage{"),
        "wrong version": (ReasonCode.UNSUPPORTED_VERSION, lambda: with_header(good(), v=2)),
        "unknown algorithm": (
            ReasonCode.UNSUPPORTED_ALGORITHM,
            lambda: with_header(good(), enc="RSA-OAEP"),
        ),
        "oversized": (ReasonCode.OVERSIZED, lambda: b" " * (MAX_ENVELOPE_BYTES + 1)),
        "unknown sender key": (
            ReasonCode.UNKNOWN_SENDER_KEY,
            lambda: sealed(sender=NodeKeys.generate("MEX"), to=[usa], now=now),
        ),
        "revoked sender key": (
            ReasonCode.REVOKED_SENDER_KEY,
            lambda: sealed(sender=retired, to=[usa], now=now),
        ),
        "missing signature": (
            ReasonCode.MISSING_SIGNATURE,
            lambda: env_edit(lambda e: e.update(signatures=[])),
        ),
        "bad signature": (
            ReasonCode.BAD_SIGNATURE,
            lambda: env_edit(
                lambda e: e["signatures"][0].update(sig=flip_byte(e["signatures"][0]["sig"]))
            ),
        ),
        "tampered header": (ReasonCode.BAD_SIGNATURE, lambda: with_header(good(), handling="H0")),
        "tampered ciphertext": (
            ReasonCode.BAD_SIGNATURE,
            lambda: env_edit(lambda e: e.update(ciphertext=flip_byte(e["ciphertext"], 5))),
        ),
        "tampered recipient stanza": (
            ReasonCode.BAD_SIGNATURE,
            lambda: env_edit(
                lambda e: e["recipients"][0].update(enc=flip_byte(e["recipients"][0]["enc"], 7))
            ),
        ),
        "wrong recipient": (
            ReasonCode.NOT_A_RECIPIENT,
            lambda: sealed(sender=mex, to=[col], now=now),
        ),
        "expired": (
            ReasonCode.EXPIRED,
            lambda: good(now=now - timedelta(minutes=30), expires_at=now - timedelta(minutes=10)),
        ),
        "future dated": (ReasonCode.FUTURE_DATED, lambda: good(now=now + timedelta(hours=1))),
        "wrong key": (
            ReasonCode.DECRYPTION_FAILED,
            lambda: sealed(sender=mex, to=[stranger], now=now),
        ),
        "unknown kind": (ReasonCode.UNKNOWN_KIND, lambda: good(body=_UnheardOf())),
        "body failing its schema": (
            ReasonCode.SCHEMA_INVALID,
            lambda: good(
                body=example_body("info.trafficking_routes").model_copy(
                    update={"schema_version": 99}
                )
            ),
        ),
        "relayed from another state": (
            ReasonCode.SENDER_MISMATCH,
            lambda: sealed(sender=col, to=[usa], now=now),
        ),
    }


async def with_retired_mex_key(hub: Hub) -> NodeKeys:
    """MEX's history in the directory: it rotated its signing key, and the replaced key was then
    revoked (compromised since yesterday). Returns the revoked key's keys."""
    retired = hub.keys["MEX"]
    rotating = retired.with_pending_signing_key()
    now = datetime.now(UTC)
    version = hub.directory.entry("MEX").version  # type: ignore[union-attr]
    hub.directory.rotate(
        rotation_request(rotating, now, new_encryption=False, base_version=version)
    )
    hub.directory.revoke("MEX", retired.signing.public().kid, now - timedelta(days=1))
    hub.keys["MEX"] = rotating.promote_pending_signing_key()
    await hub.publish_directory()
    return retired


async def quarantined(hub: Hub, state: str) -> dict[int, str]:
    """Original stream sequence -> reason, for every quarantine copy of ``state``."""
    out = {}
    async with connection.connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        jsm = nc.jsm()
        info = await jsm.stream_info(subjects.quarantine_stream(state))
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await jsm.get_msg(subjects.quarantine_stream(state), seq)
            assert msg.headers is not None
            out[int(msg.headers["Cifta-Stream-Seq"])] = msg.headers["Cifta-Reason"]
    return out


def rejections_received(mex: NodeRuntime) -> dict[str, str]:
    """envelope SHA-256 -> reason, from the signed rejections MEX has received."""
    out = {}
    for m in mex.store.messages(kind="protocol.rejection", include_protocol=True):
        opened = mex.core.open_stored(m)
        assert isinstance(opened.body, Rejection) and opened.header.sender == "USA"
        out[opened.body.envelope_sha256] = opened.body.reason.value
    return out


async def test_every_bad_envelope_gets_its_reason_a_quarantine_copy_and_a_signed_rejection(
    hub: Hub, tmp_path: Path
) -> None:
    import hashlib

    # An unknown sender key is parked and refused at the end of its publisher's deferral budget
    # only (the directory may lag behind the broker): a one-second budget keeps the test short.
    retired = await with_retired_mex_key(hub)
    cases = {name: (reason, build()) for name, (reason, build) in corpus(hub, retired).items()}
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        running_node(hub, "USA", tmp_path, park_max_age_s=1.0) as usa,
    ):
        raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
        js = raw.jetstream()
        seq_of = {}
        for i, (name, (_, data)) in enumerate(cases.items()):
            ack = await js.publish(subjects.inbox_subject("USA", "MEX", f"bad{i}"), data)
            seq_of[name] = ack.seq
        await raw.close()
        good = send_routes_report(mex, ["USA"])  # the node still works afterwards
        await eventually(lambda: usa.store.has_message(good.msg_id), what="the good message")
        await eventually(lambda: len(usa.store.rejections()) == len(cases), what="every refusal")

        recorded = {r["stream_seq"]: r["reason"] for r in usa.store.rejections()}
        for name, (reason, _) in cases.items():
            assert recorded[seq_of[name]] == reason.value, name
        await eventually(
            lambda: all(r["quarantined"] for r in usa.store.rejections()), what="quarantine"
        )
        assert await quarantined(hub, "USA") == {seq_of[n]: r.value for n, (r, _) in cases.items()}

        # MEX published every one of them (a broker fact), so every one is answered, signed by USA
        expected = {hashlib.sha256(data).hexdigest(): r.value for r, data in cases.values()}
        await eventually(lambda: len(rejections_received(mex)) == len(expected), what="answers")
        assert rejections_received(mex) == expected

        # nothing lost: every envelope in USA's inbox was stored or refused, none left pending
        async def settled() -> bool:
            status = await hub.status("USA")
            return status.lag == 0 and status.quarantined == len(cases)

        await eventually(settled, what="every envelope acknowledged or terminated")
        assert (await hub.status("USA")).stored == len(cases) + 1


async def test_replayed_msg_id_is_refused_and_an_identical_copy_is_stored_once(
    hub: Hub, tmp_path: Path
) -> None:
    mex_keys, usa_keys = hub.keys["MEX"], hub.keys["USA"]
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        original = send_routes_report(mex, ["USA"])
        await eventually(lambda: usa.store.has_message(original.msg_id))
        envelope = usa.store.message(original.msg_id)
        assert envelope is not None
        replay = sealed(sender=mex_keys, to=[usa_keys], now=datetime.now(UTC),
                        msg_id=original.msg_id)  # fmt: skip
        raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
        js = raw.jetstream()
        # the identical envelope again (a retry past the duplicate window), then a new one
        # reusing the msg_id
        await js.publish(subjects.inbox_subject("USA", "MEX", "again"), envelope.envelope)
        await js.publish(subjects.inbox_subject("USA", "MEX", "replay"), replay)
        await raw.close()
        await eventually(lambda: len(usa.store.rejections()) == 1, what="the replay refused")
        assert usa.store.rejections()[0]["reason"] == ReasonCode.REPLAY.value
        assert peek_header(replay).msg_id == original.msg_id
        assert len(usa.store.messages(direction="in")) == 1

        async def acknowledged() -> bool:  # the identical copy too (acks follow the commit)
            return (await hub.status("USA")).lag == 0

        await eventually(acknowledged, what="both copies acknowledged")


async def test_a_delivery_that_keeps_failing_is_quarantined_after_the_last_attempt(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.policy = provision.Policy(max_deliver=2)
    await hub.provision("USA")
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        attempts = []

        def broken_store(*args: object, **kwargs: object) -> None:
            attempts.append(1)
            raise OSError("disk full")

        monkeypatch.setattr(usa.store, "add_incoming", broken_store)
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: len(usa.store.rejections()) == 1, what="processing_failed")
        [refusal] = usa.store.rejections()
        assert refusal["reason"] == ReasonCode.PROCESSING_FAILED.value
        assert refusal["msg_id"] == sent.msg_id and len(attempts) == 2
        await eventually(
            lambda: mex.store.recipient_statuses(sent.msg_id)[0].state == "rejected",
            what="the rejection at MEX",
        )
        assert mex.store.recipient_statuses(sent.msg_id)[0].reason == "processing_failed"
        # terminated at once; the copy is filed from USA's store
        await eventually(lambda: usa.store.rejections()[0]["quarantined"] == 1, what="quarantine")
        assert list((await quarantined(hub, "USA")).values()) == ["processing_failed"]
        assert not usa.store.has_message(sent.msg_id)


async def test_sender_set_headers_cannot_steer_the_recipient_node(hub: Hub, tmp_path: Path) -> None:
    """FastStream would publish a handler's result to a ``reply_to`` header and decode by a
    ``content-type`` header; both come from the sender, and the node must ignore them."""
    async with running_node(hub, "USA", tmp_path) as usa:
        raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
        js = raw.jetstream()
        steering = {
            "reply_to": subjects.inbox_subject("COL", "USA", "forged"),
            "content-type": "application/json",
        }
        await js.publish(subjects.inbox_subject("USA", "MEX", "h1"), b"\xff\xfenot json",
                         headers=steering)  # fmt: skip
        good = sealed(sender=hub.keys["MEX"], to=[hub.keys["USA"]], now=datetime.now(UTC))
        await js.publish(subjects.inbox_subject("USA", "MEX", "h2"), good, headers=steering)
        await raw.close()
        await eventually(lambda: len(usa.store.messages(direction="in")) == 1, what="stored")
        await eventually(lambda: len(usa.store.rejections()) == 1, what="refused, not dropped")
        assert usa.store.rejections()[0]["reason"] == ReasonCode.MALFORMED.value
    assert (await hub.status("COL")).stored == 0  # USA's node published nothing to COL


async def test_a_co_recipient_cannot_suppress_a_message_by_squatting_its_msg_id(
    hub: Hub, tmp_path: Path
) -> None:
    """MEX learns the msg_id of COL's message to USA (say, as a co-recipient) and publishes junk
    into USA's inbox under it first; COL's real message must still be stored."""
    async with running_node(hub, "USA", tmp_path) as usa:
        async with running_node(hub, "COL", tmp_path) as col:
            col.outbox.stop()  # queue without sending, to let MEX go first
            header = col.core.compose(
                example_body("info.concealment_methods"), ["USA", "MEX"], handling=HandlingCode.H1
            )
        raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
        for msg_id in (header.msg_id, f"USA\x00{header.msg_id}"):
            await raw.jetstream().publish(
                subjects.inbox_subject("USA", "MEX", "squat"), b"junk",
                headers={"Nats-Msg-Id": msg_id},
            )  # fmt: skip
        await raw.close()
        async with running_node(hub, "COL", tmp_path):
            await eventually(lambda: usa.store.has_message(header.msg_id), what="COL's message")
