"""Blind record lookup across three nodes over a real hub (docs/lookup.md)."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from schemas import ReasonCode
from schemas.audit import EventType
from schemas.lookup import EvaluationReply, EvaluationRequest
from services.audit.service import AuditService
from services.core import subjects
from services.core.encoding import b64u, unb64u
from services.core.normalise import Firearm, firearm
from services.core.oprf import LookupKeys
from services.node.app import NodeRuntime
from services.node.lookup_client import (
    Outcome,
    StateAnswer,
    connect,
    hits,
    lookup_from_home,
    republish,
)
from services.node.lookup_service import LOOKUP_KIND
from services.node.records import REGISTER_FILE, Category, Register
from tests.support.audit import running_audit
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node
from tests.support.processes import cifta_process

pytestmark = pytest.mark.asyncio

GLOCK = ("Glock", "G19 Gen5", "9x19mm", "BXKM-417")
BERETTA = ("Beretta", "92FS", "9 mm", "BER 004512")
UNKNOWN = ("Taurus", "PT92", "9mm", "TXR 99187")


def fa(marks: tuple[str, str, str, str]) -> Firearm:
    return firearm(*marks)


def now() -> datetime:
    return datetime.now(UTC)


async def hold(hub: Hub, node: NodeRuntime, *marks: tuple[str, str, str, str]) -> None:
    """Put records into ``node``'s register and publish its filter through the hub."""
    if marks:
        node.register.add([(fa(m), Category.SEIZED, "ref-1") for m in marks], "registrar", now())
    await republish(node.settings, node.core.keys, node.register, now())


async def ask(node: NodeRuntime, marks: tuple[str, str, str, str]) -> list[StateAnswer]:
    return await lookup_from_home(node.settings, node.register, fa(marks), "officer.1", now())


async def hold_offline(hub: Hub, party: str, root: Path, *marks: tuple[str, str, str, str]) -> None:
    """The same, for a state whose node is not running."""
    settings = hub.node_settings(party, root)
    register = Register(settings.home / REGISTER_FILE, hub.keys[party].lookup)
    try:
        register.add([(fa(m), Category.SEIZED, "ref-1") for m in marks], "registrar", now())
        await republish(settings, hub.keys[party], register, now())
    finally:
        register.close()


@asynccontextmanager
async def network(
    hub: Hub,
    root: Path,
    budgets: dict[str, int] | None = None,
    parties: Sequence[str] = ("MEX", "USA", "COL"),
) -> AsyncIterator[dict[str, NodeRuntime]]:
    async with AsyncExitStack() as stack:
        nodes = {}
        for party in parties:
            extra = {"lookup_budget": budgets[party]} if budgets and party in budgets else {}
            nodes[party] = await stack.enter_async_context(running_node(hub, party, root, **extra))
        yield nodes


async def test_a_lookup_finds_exactly_the_states_holding_the_record(
    hub: Hub, tmp_path: Path
) -> None:
    async with network(hub, tmp_path) as nodes:
        await hold(hub, nodes["USA"], GLOCK)
        await hold(hub, nodes["COL"], GLOCK, BERETTA)
        await hold(hub, nodes["MEX"])  # an empty filter: it holds nothing, and says so

        assert hits(await ask(nodes["MEX"], GLOCK)) == ["COL", "USA"]
        assert hits(await ask(nodes["MEX"], BERETTA)) == ["COL"]
        # typed another way, the same firearm
        assert hits(await ask(nodes["MEX"], ("GLOCK", "17", "9", "bxkm 417"))) == ["COL", "USA"]
        unknown = await ask(nodes["MEX"], UNKNOWN)
        assert hits(unknown) == []
        assert {a.party: a.outcome for a in unknown} == {
            "USA": Outcome.NO_HIT,
            "COL": Outcome.NO_HIT,
        }
        answers = {a.party: a.outcome for a in await ask(nodes["USA"], BERETTA)}
        assert answers == {"MEX": Outcome.NO_HIT, "COL": Outcome.HIT}

        stats = nodes["USA"].register.statistics()
        assert stats.evaluated_by_asker == {"MEX": 4} and stats.refused_by_asker == {}
        assert nodes["MEX"].register.statistics().lookups_made == 4
        assert nodes["MEX"].register.statistics().lookups_with_hits == 3


def _files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


async def test_no_store_or_log_of_the_answering_nodes_or_the_hub_holds_the_serial(
    hub: Hub, tmp_path: Path
) -> None:
    """USA and COL run as deployed (``cifta node run``, logging at INFO into their log files)."""
    await hold_offline(hub, "USA", tmp_path, GLOCK)
    await hold_offline(hub, "COL", tmp_path)
    logs = {party: tmp_path / f"{party}.log" for party in ("USA", "COL")}
    with ExitStack() as stack:
        procs = []
        for party, log in logs.items():
            hub.node_settings(party, tmp_path, log_level="INFO").save()
            home = str(tmp_path / party)
            procs.append(stack.enter_context(cifta_process(["node", "run", "--home", home], log)))
        async with running_node(hub, "MEX", tmp_path) as mex:

            async def answered() -> bool:
                outcomes = {a.party: a.outcome for a in await ask(mex, GLOCK)}
                return outcomes == {"USA": Outcome.HIT, "COL": Outcome.NO_HIT}

            await eventually(answered, what="USA's hit and COL's miss, from the running nodes")
        for proc in procs:  # a clean stop (SIGTERM), as an operator stops a node
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    forms = [b"BXKM-417", b"BXKM417", b"8XKM417", b"bxkm"]
    haystacks = {
        "USA's home": _files(tmp_path / "USA"),  # it holds the record itself, sealed
        "COL's home": _files(tmp_path / "COL"),
        "the hub": _files(hub.home.root),
        "USA's log": logs["USA"].read_bytes(),
        "COL's log": logs["COL"].read_bytes(),
    }
    # searched where the lookup went: the filters in the hub's store, the answers in the logs
    assert subjects.LOOKUP_BUCKET.encode() in haystacks["the hub"]
    assert b"lookup_evaluated" in haystacks["USA's log"] and b"MEX" in haystacks["COL's log"]
    for where, data in haystacks.items():
        for form in forms:
            assert form.lower() not in data.lower(), f"{form!r} found in {where}"


def _lookup_events(audit: AuditService) -> list[tuple[EventType, str, ReasonCode | None]]:
    return sorted(
        ((e.event, e.sender, e.reason) for _, e in audit.log.events() if e.kind == LOOKUP_KIND),
        key=str,
    )


async def test_an_asker_over_its_budget_is_refused_and_recorded(hub: Hub, tmp_path: Path) -> None:
    async with running_audit(hub) as audit, network(hub, tmp_path, budgets={"USA": 2}) as nodes:
        await hold(hub, nodes["USA"], GLOCK)
        await hold(hub, nodes["COL"], GLOCK)
        for _ in range(2):
            assert hits(await ask(nodes["MEX"], GLOCK)) == ["COL", "USA"]
        third = {a.party: a for a in await ask(nodes["MEX"], GLOCK)}
        assert third["USA"].outcome is Outcome.REFUSED
        assert third["USA"].detail == ReasonCode.LOOKUP_OVER_BUDGET.value
        assert third["COL"].outcome is Outcome.HIT  # COL's budget is its own
        # another asker is not held back by MEX's budget
        assert hits(await ask(nodes["COL"], GLOCK)) == ["USA"]
        stats = nodes["USA"].register.statistics()
        assert stats.evaluated_by_asker == {"MEX": 2, "COL": 1}
        assert stats.refused_by_asker == {"MEX": 1}

        # in the audit log: USA's events (who asked, when) and COL's, signed by each
        expected = sorted(
            [(EventType.LOOKUP_EVALUATED, "MEX", None)] * 5  # 2 at USA, 3 at COL
            + [(EventType.LOOKUP_EVALUATED, "COL", None)]
            + [(EventType.REJECTED, "MEX", ReasonCode.LOOKUP_OVER_BUDGET)],
            key=str,
        )
        await eventually(
            lambda: _lookup_events(audit) == expected, what=f"lookup events, {expected}"
        )
        actors = {e.actor for _, e in audit.log.events() if e.kind == LOOKUP_KIND}
        assert actors == {"USA", "COL"}


async def test_a_proof_from_the_wrong_key_is_refused(hub: Hub, tmp_path: Path) -> None:
    """USA publishes its filter, then answers with another OPRF key: MEX refuses the answer."""
    await hold_offline(hub, "USA", tmp_path, GLOCK)  # its node is down: a forger answers for it
    usa_kid = hub.keys["USA"].lookup.public().kid  # type: ignore[union-attr]
    async with network(hub, tmp_path, parties=("MEX", "COL")) as nodes:
        await hold(hub, nodes["COL"], GLOCK)
        forger_key = LookupKeys.generate()

        async def forge(msg: nats.aio.msg.Msg) -> None:
            request = EvaluationRequest.model_validate_json(msg.data)
            evaluated, proof = forger_key.evaluate(unb64u(request.blinded))
            reply = EvaluationReply(
                request_id=request.request_id, oprf_kid=usa_kid, evaluated=b64u(evaluated),
                proof=b64u(proof),
            )  # fmt: skip
            await msg.respond(reply.model_dump_json().encode())

        async with connect(hub.node_settings("USA", tmp_path), name="forger") as usa:
            await usa.subscribe(subjects.lookup_evaluation_filter("USA"), cb=forge)
            await usa.flush()
            answers = {a.party: a for a in await ask(nodes["MEX"], GLOCK)}
        assert answers["USA"].outcome is Outcome.BAD_PROOF
        assert "proof" in answers["USA"].detail
        assert answers["COL"].outcome is Outcome.HIT
