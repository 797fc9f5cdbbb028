"""``cifta demo --cluster``: the exchange on a three-server hub with MEX on its own leaf node; in
the middle one hub server is SIGKILLed and MEX's leaf link is cut while both sides keep sending,
then both come back. Exits non-zero if any message was lost or stored twice.

The leaf link runs through an in-process TCP proxy (services/testbed/proxy.py, one per hub
server), so the cut needs no root.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from schemas import HandlingCode
from schemas.registry import example_body
from services.cli.demo import STATES, Demo, StepFailed
from services.core import subjects
from services.core.connection import connect
from services.hub import members
from services.hub.credentials import PROVISION_USER
from services.hub.home import HubHome
from services.leaf import status
from services.leaf.proxy import Proxy
from services.node.application import OfficerIdentity
from services.node.application.models import SendMessage

LEAF_STATE = "MEX"
RELAY_HEARD_S = 30.0  # after the link returns, before the relay's source is restarted
#: after the relay hears the leaf, before the sources that have not heard theirs are restarted
STALLED_AFTER_S = 60.0
BURST = 10  # messages each way before the faults, and as many during them
KILLED = "cifta-hub-1"
#: Each step's deadline: three servers, a leaf and three nodes share this machine.
STEP_TIMEOUT_S = 180.0
T = TypeVar("T")
#: Who composes the burst's messages (recorded with each, as every officer's action is).
DEMO_OFFICER = OfficerIdentity(
    name="Demo Officer", position="CIFTA liaison officer", agency="National point of contact"
)


class LinkThread:
    """The proxies of the leaf link, running in their own event loop on a thread."""

    def __init__(self, targets: list[str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxies = [self._run(self._start(url)) for url in targets]

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _start(self, url: str) -> Proxy:
        target = urlsplit(url)
        proxy = Proxy(target.hostname or "127.0.0.1", target.port or 0)
        await proxy.start()
        return proxy

    @property
    def url(self) -> str:
        return ",".join(f"nats-leaf://127.0.0.1:{p.port}" for p in self.proxies)

    def cut(self) -> None:
        for p in self.proxies:
            self.loop.call_soon_threadsafe(p.cut)

    def restore(self) -> None:
        for p in self.proxies:
            self.loop.call_soon_threadsafe(p.restore)

    def stop(self) -> None:
        for p in self.proxies:
            self._run(p.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class ClusterDemo(Demo):
    def __init__(self, workdir: Path, registry: Path) -> None:
        super().__init__(workdir, registry)
        self.link: LinkThread | None = None
        self.leaf_home = workdir / "leaf-MEX"
        self.sent: dict[tuple[str, str], list[str]] = {}  # (sender, recipient): msg ids in order

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        if not self.within(STEP_TIMEOUT_S, condition):
            raise StepFailed(f"timed out after {STEP_TIMEOUT_S:.0f}s waiting for {what}")

    def within(self, seconds: float, condition: Callable[[], bool]) -> bool:
        """Whether ``condition`` comes to hold within ``seconds`` (polled); a node's process
        that exits meanwhile fails the step."""
        deadline = time.monotonic() + seconds
        while not condition():
            for state, proc in self.nodes.items():
                if proc.poll() is not None:
                    raise StepFailed(f"{state}'s process exited ({proc.returncode}); see its log")
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)  # polling the nodes' stores: a condition with a deadline
        return True

    def start_node(self, state: str) -> None:
        if state != LEAF_STATE:
            super().start_node(state)
            return
        # its node.json points at its leaf (`cifta leaf attach`): no hub URL from the demo's env
        env, self.env = self.env, {k: v for k, v in self.env.items() if k != "CIFTA_NODE_HUB_URL"}
        try:
            super().start_node(state)
        finally:
            self.env = env

    def setup(self) -> None:
        self.prepare_workdir()
        self.cifta("hub", "init", "--registry", str(self.registry))
        for state in STATES:
            self.join(state)
        self.leaf_home.mkdir(parents=True)
        self.cifta("leaf", "allow", "--state", LEAF_STATE, "--out", str(self.leaf_home))
        self.cifta("hub", "render-config", "--cluster", "--port", "-1", "--leaf-port", "-1")
        url = self.cifta("hub", "start").strip().rsplit(" ", 1)[-1]
        self.env["CIFTA_NODE_HUB_URL"] = url
        self.cifta("hub", "provision")
        self.cifta("directory", "publish")
        self.start_audit()
        self.say(
            f"The secretariat runs a three-server hub ({url}), every stream R3, with a leaf "
            f"node listener (no_advertise); {LEAF_STATE} is allowed a leaf of its own."
        )
        self.link = LinkThread(HubHome(self.hub_home).leaf_url().split(","))
        leaf = ("--home", str(self.leaf_home))
        self.cifta("leaf", "init", *leaf, "--state", LEAF_STATE, "--hub-leaf-url", self.link.url,
                   "--seed", str(self.leaf_home / "hub-leaf.nk"))  # fmt: skip
        self.cifta("leaf", "render-config", *leaf)
        self.cifta("leaf", "start", *leaf)
        self.cifta("leaf", "attach", *leaf, "--node-home", str(self.node_home(LEAF_STATE)))
        self.say(
            f"{LEAF_STATE} started its leaf node (JetStream domain leaf-{LEAF_STATE}): a local "
            f"outbox the hub's relay sources, and mirrors of its inbox and directory; its node "
            "talks to the leaf alone. The link runs through a proxy that can cut it."
        )

    def prepare_workdir(self) -> None:
        marker = self.workdir / ".cifta-demo"
        looks_like_demo = marker.exists() or (self.workdir / "hub" / "registry.json").exists()
        if self.workdir.exists() and any(self.workdir.iterdir()) and not looks_like_demo:
            raise StepFailed(f"{self.workdir} is not empty and not a demo directory")
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        marker.write_text("Created by `cifta demo`, which deletes and recreates this directory.\n")

    def compose(self, sender: str, recipient: str) -> str:
        """One message composed by ``sender``'s officer into its node's store, as `cifta send`."""
        cmd = SendMessage(
            officer=DEMO_OFFICER,
            kind="info.trafficking_routes",
            body=example_body("info.trafficking_routes").model_dump(mode="json"),
            to=[recipient],
            handling=HandlingCode.H2,
        )
        msg_id = self.node(sender).send(cmd).msg_id
        self.sent.setdefault((sender, recipient), []).append(msg_id)
        return msg_id

    def burst(self) -> None:
        for _ in range(BURST):
            self.compose("MEX", "USA")
            self.compose("USA", "MEX")
            self.compose("COL", "MEX")

    def exchange(self) -> str:
        for state in STATES:
            self.start_node(state)
        for state in STATES:
            self.wait_for(f"{state}'s node to follow the directory", self.knowing(state, STATES))
        first = self.compose("MEX", "USA")
        self.wait_for("USA to store MEX's first report", lambda: self.stored("USA", first))
        answer = self.compose("USA", "MEX")
        self.wait_for("MEX to store USA's answer", lambda: self.stored("MEX", answer))
        self.say(
            "MEX sent USA a report through its leaf (outbox -> relay -> USA's inbox) and "
            "received USA's answer through its mirrored inbox."
        )
        return first

    def faults(self) -> None:
        assert self.link is not None
        self.burst()
        pid = members.running_pid(self.hub_home, KILLED)
        if pid is None:
            raise StepFailed(f"{KILLED} is not running")
        os.kill(pid, signal.SIGKILL)
        self.link.cut()
        self.say(
            f"Mid-burst: {KILLED} SIGKILLed and {LEAF_STATE}'s leaf link cut. MEX, USA and COL "
            f"each sent {BURST} messages; as many again now, during both faults."
        )
        self.burst()
        self.wait_for("MEX's messages stored on its leaf", self.queued_on_leaf)
        self.detail(self.cifta("leaf", "status", "--home", str(self.leaf_home)))
        self.say("MEX's officers kept working: its leaf holds what they sent, unconfirmed.")
        self.cifta("hub", "start", "--server", KILLED)
        self.link.restore()
        self.say(f"{KILLED} restarted (it rejoins and catches up) and the leaf link restored.")
        if not self.relay_heard(RELAY_HEARD_S):
            # docs/operations.md 4.3: a relay whose leadership moved during the cut may not set
            # its source up again on its own; its leader steps down and the next one does
            self.cifta("leaf", "relays", "--restart", LEAF_STATE)
            self.say(f"The relay did not hear {LEAF_STATE}'s leaf within {RELAY_HEARD_S:.0f} s; "
                     "its source was restarted (`cifta leaf relays --restart`).")  # fmt: skip
        if not self.within(STALLED_AFTER_S, self.all_stored):
            # a source inside the hub can stall when its stream's leader moved (a killed server):
            # the same command steps down every stream whose source has not heard its origin
            try:
                self.cifta("leaf", "relays", "--restart", LEAF_STATE)
            except StepFailed as exc:
                raise StepFailed(f"{exc}\n{self.link_report()}") from None
            self.say(
                f"Not all stored {STALLED_AFTER_S:.0f} s after the relay heard the leaf: the "
                "stalled sources were restarted (`cifta leaf relays --restart`)."
            )
        for (sender, recipient), ids in self.sent.items():
            try:
                self.wait_for(f"{sender}'s {len(ids)} messages at {recipient}",
                              lambda r=recipient, i=ids: all(self.stored(r, m) for m in i))  # type: ignore[misc]  # fmt: skip
            except StepFailed as exc:
                raise StepFailed(f"{exc}\n{self.link_report()}") from None
        self.detail(self.cifta("leaf", "relays"))

    def all_stored(self) -> bool:
        return all(self.stored(r, m) for (_, r), ids in self.sent.items() for m in ids)

    def link_report(self) -> str:
        """Both ends of the leaf link as their commands print them, for a failed step."""
        lines = []
        commands = [("leaf", "relays"), ("leaf", "status", "--home", str(self.leaf_home)),
                    ("hub", "status")]  # fmt: skip
        for command in commands:
            try:
                lines.append(self.cifta(*command).rstrip())
            except StepFailed as exc:
                lines.append(str(exc))
        return "\n".join(lines)

    def relay_heard(self, within_s: float) -> bool:
        """The hub's relay of the leaf state hears the leaf's outbox, within ``within_s``."""
        home = HubHome(self.hub_home)
        seed = home.user_seed(LEAF_STATE, PROVISION_USER)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if asyncio.run(status.relay_hears_leaf(home.url(), seed, LEAF_STATE)):
                return True
            time.sleep(0.5)  # polling the hub's view: a condition with a deadline
        return False

    def queued_on_leaf(self) -> bool:
        app = self.node("MEX")
        ids = self.sent[("MEX", "USA")]
        return all(s.state != "pending" for m in ids for s in app.status(m)[1])

    def count(self) -> list[str]:
        """Every message stored once at its recipient's inbox: the guarantee. The order is told,
        not promised: a publish that timed out while a stream's leader moved is retried after
        later ones the new leader already stored (each message carries its sending time in its
        UUIDv7 id and ``created_at``)."""
        problems, reordered = [], []
        held = asyncio.run(self.inbox_order())
        for (sender, recipient), ids in self.sent.items():
            got = [m for p, m in held[recipient] if p == sender and m in set(ids)]
            lost, twice = len(set(ids) - set(got)), len(got) - len(set(got))
            if lost or twice:
                problems.append(f"{sender} -> {recipient}: {lost} lost, {twice} stored twice")
            elif got != ids:
                reordered.append(f"{sender} -> {recipient}")
        for recipient, entries in held.items():
            ids = [m for _, m in entries]
            if len(ids) != len(set(ids)):
                problems.append(f"{recipient}'s inbox holds a message twice")
        total = sum(len(i) for i in self.sent.values())
        verdict = "PROBLEMS" if problems else "each stored once"
        order = (
            "each in its sender's order"
            if not reordered
            else f"out of sending order for {', '.join(reordered)} (retried across the failover)"
        )
        self.say(f"Counted at the hub's inboxes: {total} messages, {verdict}; {order}.")
        return problems

    async def inbox_order(self) -> dict[str, list[tuple[str, str]]]:
        home = HubHome(self.hub_home)
        held: dict[str, list[tuple[str, str]]] = {}
        for state in STATES:
            async with connect(home.url(), home.user_seed(state, PROVISION_USER)) as nc:
                js = nc.jetstream()
                stream = subjects.inbox_stream(state)
                info = await js.stream_info(stream)
                entries = []
                first = info.state.first_seq if info.state.messages else info.state.last_seq + 1
                for seq in range(first, info.state.last_seq + 1):
                    subject = (await js.get_msg(stream, seq)).subject or ""
                    parsed = subjects.parse_inbox(subject)
                    if parsed is not None:
                        entries.append((parsed[1], subject.rsplit(".", 1)[1]))
                held[state] = entries
        return held

    def teardown(self) -> list[str]:
        problems = super().teardown()
        try:
            self.cifta("leaf", "stop", "--home", str(self.leaf_home))
        except StepFailed as exc:
            problems.append(str(exc))
        if self.link is not None:
            self.link.stop()
        return problems


def run(args: argparse.Namespace) -> int:
    demo = ClusterDemo(Path(args.workdir), Path(args.registry))
    print("CIFTA Exchange demonstration: a three-server hub, MEX on its own leaf node.\n")
    failed: Any = None
    problems: list[str] = []
    try:
        demo.setup()
        demo.exchange()
        demo.faults()
        problems = demo.count()
    except StepFailed as exc:
        failed = exc
    except KeyboardInterrupt:
        failed = "interrupted"
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}"
    problems += demo.teardown()
    if failed is None and not problems:
        demo.say("Nothing lost, nothing duplicated. Nodes, leaf and hub stopped cleanly.")
        print(f"\nDemo data (keys 0600, stores, logs) is in {demo.workdir}.")
        return 0
    print(f"\nFAILED: {failed or '; '.join(problems)}", file=sys.stderr)
    return 1
