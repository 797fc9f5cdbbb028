"""A rebuild of the procedures opens the messages before it takes the store's write lock: a node
running on the same file is not held up while every message is decrypted, and what it stores
meanwhile is part of the rebuilt state."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from schemas import HandlingCode
from services.core.envelope import OpenedEnvelope
from services.node.core import NodeCore
from services.node.store import StoredMessage
from services.node.workflows.tracing import Status
from tests.unit.test_casework import make, network


def _lock_is_free(path: Path) -> bool:
    """Whether another connection (the running node) could write now, without waiting."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def _spy_opens(
    core: NodeCore, monkeypatch: pytest.MonkeyPatch, during: object = None
) -> list[tuple[str, bool]]:
    """Record (msg_id, whether the write lock was free) of every message the core opens."""
    seen: list[tuple[str, bool]] = []
    real = core.open_stored

    def spying(m: StoredMessage) -> OpenedEnvelope:
        seen.append((m.msg_id, _lock_is_free(core.store.path)))
        if len(seen) == 1 and callable(during):
            during()
        return real(m)

    monkeypatch.setattr(core, "open_stored", spying)
    return seen


def test_a_rebuild_opens_every_message_without_holding_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = network(tmp_path)
    request = make("tracing.request", due_at=net.clock() + timedelta(days=7))
    h = net["MEX"].compose(request, ["USA"], handling=HandlingCode.H1)
    net.deliver()
    net["USA"].compose(make("tracing.acknowledgement", request_msg_id=h.msg_id), ["MEX"],
                       handling=HandlingCode.H1)  # fmt: skip
    net.deliver()
    seen = _spy_opens(net["MEX"], monkeypatch)
    assert net["MEX"].rebuild_casework() == (2, 0)
    assert len(seen) == 2
    assert all(free for _, free in seen), seen


def test_a_message_stored_while_a_rebuild_opens_the_others_is_in_the_rebuilt_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = network(tmp_path)
    request = make("tracing.request", due_at=net.clock() + timedelta(days=7))
    h = net["MEX"].compose(request, ["USA"], handling=HandlingCode.H1)
    net.deliver()
    net["USA"].compose(make("tracing.acknowledgement", request_msg_id=h.msg_id), ["MEX"],
                       handling=HandlingCode.H1)  # fmt: skip
    # the acknowledgement reaches MEX's store while its rebuild is opening the request
    seen = _spy_opens(net["MEX"], monkeypatch, during=net.deliver)
    assert net["MEX"].rebuild_casework() == (2, 0)
    [trace] = net["MEX"].casework.all_traces()
    assert trace.status is Status.ACKNOWLEDGED
    # the request opened with the lock free; the late acknowledgement once, under the lock
    ack = net["MEX"].store.messages(direction="in", kind="tracing.acknowledgement")[0].msg_id
    assert seen == [(h.msg_id, True), (ack, False)]
