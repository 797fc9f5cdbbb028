"""The directory and the key lifecycle, live: nodes follow their signed bucket, refuse what they
cannot trust, survive rotations with an overlap, and stop trusting a revoked key."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from schemas import HandlingCode, ReasonCode
from services.cli.main import main
from services.core import subjects
from services.core.directory import registration_request
from services.core.envelope import peek_header
from services.core.keys import NodeKeys
from services.directory.service import DirectoryService
from services.hub.config import DIRECTORY_USER, SECRETARIAT_ACCOUNT
from services.node.app import NodeRuntime
from tests.builders import example_body, sealed
from tests.support.hub import Hub, details, eventually
from tests.support.nodes import delivered_to, running_node, send_routes_report


async def cifta(*argv: str) -> int:
    """The real command, in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


async def put_into_bucket(hub: Hub, state: str, party: str, value: bytes) -> None:
    """What only the directory service can do: write into a state's bucket."""
    seed = hub.home.user_seed(SECRETARIAT_ACCOUNT, DIRECTORY_USER)
    nc = await nats.connect(hub.url, nkeys_seed=str(seed))
    await nc.jetstream().publish(subjects.directory_publish_subject(state, party), value)
    await nc.close()


async def test_forged_and_replayed_entries_are_refused_with_an_alert(
    hub: Hub, tmp_path: Path
) -> None:
    async with running_node(hub, "USA", tmp_path) as usa:
        old = hub.directory.signed("MEX")
        assert old is not None
        hub.directory.update_contacts("MEX", {"point_of_contact": "Fiscalía General"})
        await hub.publish_directory()
        await eventually(
            lambda: usa.core.directory.entries["MEX"].point_of_contact == "Fiscalía General",
            what="the update",
        )
        DirectoryService.create_root_key(tmp_path / "impostor.key.json")
        impostor = DirectoryService.open(tmp_path / "impostor", tmp_path / "impostor.key.json")
        impostor.register(
            registration_request(NodeKeys.generate("MEX"), details("MEX"), datetime.now(UTC))
        )
        forged = impostor.signed("MEX")
        assert forged is not None
        await put_into_bucket(hub, "USA", "MEX", forged.model_dump_json().encode())
        await put_into_bucket(hub, "USA", "MEX", old.model_dump_json().encode())
        await eventually(lambda: len(usa.store.alerts()) == 2, what="two alerts")
        assert [a[2] for a in usa.store.alerts()] == [
            "bad_signature for MEX",
            "older_version for MEX",
        ]
        entry = usa.core.directory.entries["MEX"]
        assert entry.version == 2 and entry.point_of_contact == "Fiscalía General"
    # and the operator sees them
    hub.node_settings("USA", tmp_path).save()
    assert main(["directory", "alerts", "--home", str(tmp_path / "USA")]) == 1


async def test_a_revoked_key_is_refused_after_its_revocation_time_and_its_credential_dies(
    hub: Hub, tmp_path: Path
) -> None:
    mex, usa = hub.keys["MEX"], hub.keys["USA"]
    old_seed = tmp_path / "MEX-old.nk"
    old_seed.write_bytes(hub.home.node_seed("MEX").read_bytes())
    gone = asyncio.Event()

    async def on_disconnect() -> None:
        gone.set()

    raw = await nats.connect(
        hub.url, nkeys_seed=str(old_seed), allow_reconnect=False, disconnected_cb=on_disconnect
    )
    before = sealed(sender=mex, to=[usa], now=datetime.now(UTC))
    await raw.jetstream().publish(subjects.inbox_subject("USA", "MEX", "a"), before)
    revoked_at = datetime.now(UTC)
    after = sealed(sender=mex, to=[usa], now=datetime.now(UTC))  # signed after revocation time
    await raw.jetstream().publish(subjects.inbox_subject("USA", "MEX", "b"), after)

    kid = mex.signing.public().kid
    new_bundle = str(tmp_path / "MEX-new")
    code = await cifta("directory", "--hub-home", str(hub.home.root), "revoke", "MEX", kid,
                       "--at", revoked_at.isoformat(), "--out", new_bundle)  # fmt: skip
    assert code == 0
    await asyncio.wait_for(gone.wait(), 10)  # the server closed the revoked user's connection
    with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
        await nats.connect(hub.url, nkeys_seed=str(old_seed), allow_reconnect=False)
    assert (tmp_path / "MEX-new" / "hub.nk").read_bytes() != old_seed.read_bytes()

    async with running_node(hub, "USA", tmp_path) as usa_node:  # with the new directory
        await eventually(lambda: usa_node.store.has_message(peek_header(before).msg_id))
        await eventually(lambda: len(usa_node.store.rejections()) == 1, what="the refusal")
        [refusal] = usa_node.store.rejections()
        assert refusal["msg_id"] == peek_header(after).msg_id
        assert refusal["reason"] == ReasonCode.REVOKED_SENDER_KEY.value


def stanza_kid(envelope: bytes) -> str:
    return str(json.loads(envelope)["recipients"][0]["kid"])


async def test_encryption_key_rotation_overlaps_old_and_new_messages_both_open(
    hub: Hub, tmp_path: Path
) -> None:
    hub.node_settings("USA", tmp_path).save()
    old_kid = hub.keys["USA"].current_encryption.public().kid
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        mex.outbox.stop()  # sealed before the rotation, delivered after it
        sealed_to_old = mex.core.compose(example_body("info.concealment_methods"), ["USA"],
                                         handling=HandlingCode.H1)  # fmt: skip
        request = tmp_path / "USA-rotation.json"
        assert await cifta("directory", "rotate", "--home", str(tmp_path / "USA"),
                           "--out", str(request)) == 0  # fmt: skip
        await eventually(lambda: len(usa.core.keys.encryption) == 2, what="USA takes its new key")
        assert await cifta("directory", "--hub-home", str(hub.home.root), "approve",
                           str(request)) == 0  # fmt: skip
        new_kid = usa.core.keys.current_encryption.public().kid
        await eventually(lambda: mex.core.directory.encryption_key("USA").kid == new_kid,
                         what="MEX sees USA's new key")  # fmt: skip
        sealed_to_new = send_routes_report(mex, ["USA"])
        for header in (sealed_to_old, sealed_to_new):
            message = mex.store.message(header.msg_id)
            assert message is not None
            kids = stanza_kid(message.envelope)
            assert kids == (old_kid if header is sealed_to_old else new_kid)
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        for header in (sealed_to_old, sealed_to_new):  # both open at USA during the overlap
            await eventually(lambda h=header: delivered_to(mex, h.msg_id) == {"USA"})
            usa.core.read(header.msg_id, officer="agent.k")


async def test_signing_key_rotation_overlaps_and_the_node_switches_when_published(
    hub: Hub, tmp_path: Path
) -> None:
    hub.node_settings("MEX", tmp_path).save()
    old_kid = hub.keys["MEX"].signing.public().kid
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        mex.outbox.stop()
        signed_with_old = send_routes_report(mex, ["USA"])
        request = tmp_path / "MEX-rotation.json"
        assert await cifta("directory", "rotate", "--home", str(tmp_path / "MEX"), "--signing",
                           "--out", str(request)) == 0  # fmt: skip
        await eventually(lambda: mex.core.keys.pending_signing is not None, what="pending key")
        assert mex.core.keys.signing.public().kid == old_kid  # not before it is published
        assert await cifta("directory", "--hub-home", str(hub.home.root), "approve",
                           str(request), "--overlap-days", "7") == 0  # fmt: skip
        await eventually(lambda: mex.core.keys.signing.public().kid != old_kid,
                         what="MEX signs with its new key once the directory lists it")  # fmt: skip
        signed_with_new = send_routes_report(mex, ["USA"])
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        for header in (signed_with_old, signed_with_new):
            await eventually(lambda h=header: delivered_to(mex, h.msg_id) == {"USA"})
        kids = set()
        for h in (signed_with_old, signed_with_new):
            stored = usa.store.message(h.msg_id)
            assert stored is not None
            kids.add(peek_header(stored.envelope).sender_kid)
        assert old_kid in kids and len(kids) == 2
        assert usa.store.rejections() == []


async def test_a_node_starts_from_its_cached_directory_while_the_hub_is_down(
    hub: Hub, tmp_path: Path
) -> None:
    async with running_node(hub, "USA", tmp_path) as usa:
        hub.directory.update_contacts("MEX", {"point_of_contact": "Guardia Nacional"})
        await hub.publish_directory()  # an update only the running node's watch can bring
        await eventually(lambda: usa.core.directory.entries["MEX"].version == 2)
    hub.kill()
    node = NodeRuntime(hub.node_settings("USA", tmp_path), keys=hub.keys["USA"])
    starting = asyncio.create_task(node.start())
    try:
        assert node.core.directory.parties() == ["COL", "MEX", "USA"]
        assert node.core.directory.entries["MEX"].point_of_contact == "Guardia Nacional"
        queued = node.core.compose(example_body("info.concealment_methods"), ["MEX", "COL"],
                                   handling=HandlingCode.H0)  # fmt: skip
        assert not starting.done()  # still waiting for the hub
        hub.restart_on_same_port()
        await asyncio.wait_for(starting, 30)
        async with running_node(hub, "MEX", tmp_path) as mex:
            await eventually(lambda: mex.store.has_message(queued.msg_id), what="delivered")
    finally:
        if not starting.done():
            starting.cancel()
        await node.stop()


async def test_contacts_updated_reach_every_node_and_export_in_every_form(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    update = tmp_path / "contacts.json"
    update.write_text(json.dumps({"contacts": [
        {"role": "customs", "name": "Lic. Ana Beltrán", "position": "Coordinadora, ANAM",
         "email": "armas.anam@anam.example.mx", "languages": ["es"]}]}))  # fmt: skip
    hub.node_settings("USA", tmp_path).save()
    async with running_node(hub, "USA", tmp_path) as usa:
        assert await cifta("directory", "--hub-home", str(hub.home.root), "update-contacts",
                           "MEX", "--details", str(update)) == 0  # fmt: skip
        await eventually(lambda: usa.core.directory.entries["MEX"].version == 2)
    capsys.readouterr()
    assert main(["directory", "show", "MEX", "--lang", "es", "--home", str(tmp_path / "USA")]) == 0
    shown = capsys.readouterr().out
    assert (
        "aduanas" in shown and "Lic. Ana Beltrán" in shown and "Estados Unidos Mexicanos" in shown
    )
    out = tmp_path / "directory.csv"
    assert main(["directory", "export", "--format", "csv", "--out", str(out),
                 "--home", str(tmp_path / "USA")]) == 0  # fmt: skip
    rows = out.read_text().splitlines()
    assert rows[0].startswith("state,name_es,name_en,name_fr,name_pt")
    assert any(r.startswith("MEX,") and "customs" in r for r in rows)
    assert main(["directory", "--hub-home", str(hub.home.root), "export", "--format", "json",
                 "--out", str(tmp_path / "d.json")]) == 0  # fmt: skip
    exported = json.loads((tmp_path / "d.json").read_text())
    assert {e["party"] for e in exported} == {"MEX", "USA", "COL"}
