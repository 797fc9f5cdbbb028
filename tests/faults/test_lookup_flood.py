"""A hostile state floods an evaluation endpoint: refused, counted, no one else held up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.lookup import REQUEST_FORMAT, EvaluationRequest
from services.core import subjects
from services.core.encoding import b64u, uuid7
from services.core.oprf import blind
from services.node.lookup_client import Outcome, connect
from tests.integration.test_lookup import GLOCK, ask, hold, network
from tests.support.hub import Hub, eventually

# COL's lookup must be answered within its 5 s timeout during the flood: the node's bound, not a
# busy machine's, so it runs alone (make test)
pytestmark = [pytest.mark.asyncio, pytest.mark.exclusive]
FLOOD = 3_000


async def test_a_flood_from_one_state_is_refused_and_does_not_hold_up_another(
    hub: Hub, tmp_path: Path
) -> None:
    async with network(hub, tmp_path, budgets={"USA": 5}) as nodes:
        await hold(hub, nodes["USA"], GLOCK)
        await hold(hub, nodes["COL"])
        request = (
            EvaluationRequest(
                format=REQUEST_FORMAT, request_id=uuid7(), blinded=b64u(blind(b"guess").element)
            )
            .model_dump_json()
            .encode()
        )
        async with connect(hub.node_settings("MEX", tmp_path), name="flood") as mex:
            inbox = mex.new_inbox()
            replies: list[bytes] = []

            async def keep(msg: object) -> None:
                replies.append(msg.data)  # type: ignore[attr-defined]

            await mex.subscribe(inbox, cb=keep)
            subject = subjects.lookup_evaluation_subject("USA", "MEX")
            for _ in range(FLOOD):  # fired without waiting, as fast as the client can
                await mex.publish(subject, request, reply=inbox)
            await mex.flush()
            t = time.perf_counter()
            answers = {a.party: a for a in await ask(nodes["COL"], GLOCK)}
            took = time.perf_counter() - t
            assert answers["USA"].outcome is Outcome.HIT, answers["USA"]
            print(f"COL's lookup during the flood took {took * 1000:.0f} ms")
            await eventually(lambda: len(replies) == FLOOD, what="every flooded request answered")
        stats = nodes["USA"].register.statistics()
        assert stats.evaluated_by_asker == {"MEX": 5, "COL": 1}
        assert stats.refused_by_asker == {"MEX": FLOOD - 5}
