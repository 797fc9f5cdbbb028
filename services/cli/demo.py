"""``cifta demo``: the whole network on this machine, driven through the same commands people use.

The secretariat sets up a hub for MEX, USA and COL; each state initialises its node; MEX sends a
trafficking-routes report (Art. XIII.1.c, H2, confidential) to USA and COL while COL's node is
offline; USA reads it; COL's node starts later and still receives it; both signed receipts reach
MEX; USA replies in the same case. Every step is a real process (nats-server, three
``cifta node run``, and one ``cifta`` command per officer action). Exits non-zero if a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.audit.log import AuditLog
from services.core.directory import DirectoryTrust, RootPublicKey
from services.node.store import Store

STATES = ("MEX", "USA", "COL")
CASE = "MEX-FGR-2026-0412"
TIMEOUT_S = 60.0


class StepFailed(Exception):
    pass


class Demo:
    def __init__(self, workdir: Path, registry: Path) -> None:
        self.workdir = workdir
        self.registry = registry
        self.hub_home = workdir / "hub"
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = dict(
            os.environ, CIFTA_HUB_HOME=str(self.hub_home), CIFTA_NODE_WITNESS_INTERVAL_S="1"
        )
        self.step_no = 0

    # -- helpers ---------------------------------------------------------------------------------

    def say(self, sentence: str) -> None:
        self.step_no += 1
        print(f"{self.step_no:>2}. {sentence}", flush=True)

    def detail(self, text: str) -> None:
        for line in text.rstrip().splitlines():
            print(f"      {line}", flush=True)

    def cifta(self, *args: str, stdin: bytes | None = None) -> str:
        """Run one ``cifta`` command as a separate process; fail the step if it fails."""
        cmd = [sys.executable, "-m", "services.cli.main", *args]
        done = subprocess.run(cmd, input=stdin, capture_output=True, env=self.env, check=False)  # noqa: S603
        if done.returncode != 0:
            raise StepFailed(f"`cifta {' '.join(args)}` failed: {done.stderr.decode().strip()}")
        return done.stdout.decode()

    def start_audit(self) -> None:
        log = (self.hub_home / "audit.log").open("ab")
        self.nodes["AUDIT"] = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "audit", "run", "--checkpoint-every", "1",
             "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )  # fmt: skip

    def audit_state(self, msg_id: str) -> tuple[int, int, set[str]]:
        """(events of the message, of them under the latest checkpoint, who cosigned it)."""
        log = AuditLog(self.hub_home / "audit" / "audit.sqlite")
        try:
            events = log.leaves_of(msg_id)
            latest = log.latest_checkpoint()
            size = 0 if latest is None else latest.size
            cosigners = {w for s, w, _ in log.cosignatures() if s == size}
            return len(events), sum(1 for i, _ in events if i < size), cosigners
        finally:
            log.close()

    def node_home(self, state: str) -> Path:
        return self.workdir / "nodes" / state

    def start_node(self, state: str) -> None:
        log = (self.node_home(state) / "node.log").open("ab")
        self.nodes[state] = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "services.cli.main",
                "node",
                "run",
                "--home",
                str(self.node_home(state)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            for state, proc in self.nodes.items():
                if proc.poll() is not None:
                    raise StepFailed(f"{state}'s node exited ({proc.returncode}); see its node.log")
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {TIMEOUT_S:.0f}s waiting for {what}")
            time.sleep(0.1)  # polling the node's store: a condition with a deadline

    def stored(self, state: str, msg_id: str) -> bool:
        store = Store(self.node_home(state) / "store.sqlite")
        try:
            return store.has_message(msg_id)
        finally:
            store.close()

    def knowing(self, state: str, parties: tuple[str, ...]) -> Callable[[], bool]:
        """A condition: ``state``'s node has verified the directory entries of ``parties``."""
        home = self.node_home(state)

        def knows() -> bool:
            root = RootPublicKey.load(home / "root.json")
            trust = DirectoryTrust(root, cache=home / "directory.json")
            return set(parties) <= set(trust.directory().parties())

        return knows

    def recipient_states(self, state: str, msg_id: str) -> dict[str, str]:
        store = Store(self.node_home(state) / "store.sqlite")
        try:
            return {s.recipient: s.state for s in store.recipient_statuses(msg_id)}
        finally:
            store.close()

    def join(self, state: str) -> str:
        """A state's node asks to join, the secretariat approves: the onboarding of one state."""
        home = self.node_home(state)
        self.cifta("node", "init", "--party", state, "--home", str(home))
        request = home / "registration.json"
        details = self.registry.parent / "states" / f"{state}.json"
        self.cifta("directory", "register", "--home", str(home), "--details", str(details),
                   "--out", str(request))  # fmt: skip
        kid = json.loads(self.cifta("keys", "public", str(home / "keys.json")))["signing"]["kid"]
        # (a real secretariat has the kid read out over the telephone before approving)
        return self.cifta("directory", "approve", str(request), "--confirm", kid,
                          "--out", str(home))  # fmt: skip

    # -- the scenario ----------------------------------------------------------------------------

    def setup(self) -> None:
        marker = self.workdir / ".cifta-demo"
        looks_like_demo = marker.exists() or (self.workdir / "hub" / "registry.json").exists()
        if self.workdir.exists() and any(self.workdir.iterdir()) and not looks_like_demo:
            raise StepFailed(
                f"{self.workdir} is not empty and not a demo directory; not touching it"
            )
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        marker.write_text("Created by `cifta demo`, which deletes and recreates this directory.\n")
        self.cifta("hub", "init", "--registry", str(self.registry))
        self.say(
            "The secretariat created the hub: registry of MEX, USA and COL, its own keys, "
            "and one NATS account and least-privilege user per state."
        )
        for state in STATES:
            self.join(state)
        self.say(
            "MEX, USA and COL each generated their keys (ML-KEM-768+X25519, Ed25519) and a "
            "signed registration request; the secretariat confirmed each key id and approved "
            "it: each directory entry is signed by the secretariat's root key."
        )
        self.cifta("hub", "render-config", "--port", "-1")
        url = self.cifta("hub", "start").strip().rsplit(" ", 1)[-1]
        self.env["CIFTA_NODE_HUB_URL"] = url
        self.cifta("hub", "provision")
        self.cifta("directory", "publish")
        self.start_audit()
        self.say(
            f"The hub is running at {url}, with INBOX_<state> (deny delete, deny purge), "
            "QUARANTINE_<state> and each node's durable consumer provisioned."
        )

    def exchange(self) -> str:
        self.start_node("MEX")
        self.start_node("USA")
        for state in ("MEX", "USA"):
            self.wait_for(f"{state}'s node to follow the directory", self.knowing(state, STATES))
        self.say(
            "MEX's and USA's nodes are running and have verified every directory entry from "
            "their own directory bucket; COL's node is offline."
        )

        report = self.cifta("template", "info.trafficking_routes").encode()
        sent = json.loads(
            self.cifta(
                "send",
                "--home",
                str(self.node_home("MEX")),
                "--kind",
                "info.trafficking_routes",
                "--to",
                "USA,COL",
                "--handling",
                "H2",
                "--confidential",
                "--case",
                CASE,
                "--body",
                "-",
                "--json",
                stdin=report,
            )
        )
        msg_id = sent["msg_id"]
        self.say(
            f"MEX sent a trafficking-routes report (Art. XIII.1.c, handling H2, "
            f"confidential, case {CASE}) to USA and COL: {msg_id}."
        )

        self.wait_for("USA to store the report", lambda: self.stored("USA", msg_id))
        shown = json.loads(
            self.cifta(
                "show",
                "--home",
                str(self.node_home("USA")),
                msg_id,
                "--json",
                "--officer",
                "Special Agent D. Whitfield",
            )
        )
        self.say(
            f"USA received it, verified MEX's signature and decrypted it: "
            f'"{shown["body"]["title"]}" (the opening by Special Agent D. Whitfield '
            f"is recorded)."
        )

        self.wait_for(
            "USA's receipt at MEX",
            lambda: self.recipient_states("MEX", msg_id).get("USA") == "delivered",
        )
        self.say(
            "USA's node acknowledged it with a signed delivery receipt, now at MEX; "
            "COL's copy waits at the hub:"
        )
        self.detail(self.cifta("status", "--home", str(self.node_home("MEX")), msg_id))
        self.detail(self.cifta("hub", "status"))

        self.start_node("COL")
        self.wait_for("COL to store the report", lambda: self.stored("COL", msg_id))
        self.say("COL's node started later and received the report from its inbox at the hub.")
        self.wait_for(
            "both receipts at MEX",
            lambda: set(self.recipient_states("MEX", msg_id).values()) == {"delivered"},
        )
        self.say("Both signed receipts have reached MEX:")
        self.detail(self.cifta("status", "--home", str(self.node_home("MEX")), msg_id))

        answer = self.cifta("template", "info.concealment_methods").encode()
        reply = json.loads(
            self.cifta(
                "reply",
                "--home",
                str(self.node_home("USA")),
                msg_id,
                "--kind",
                "info.concealment_methods",
                "--body",
                "-",
                "--json",
                stdin=answer,
            )
        )["msg_id"]
        self.wait_for("USA's reply at MEX", lambda: self.stored("MEX", reply))
        self.say(
            f"USA replied in the same case with concealment methods it has seen "
            f"({reply}); MEX's case file now reads:"
        )
        self.detail(
            self.cifta("inbox", "--home", str(self.node_home("MEX")), "--all", "--case", CASE)
        )
        return str(msg_id)

    def onboard_live(self) -> None:
        """Brazil joins while the others run: approval, reload, provisioning, publication."""
        pid = (self.hub_home / "run" / "nats-server.pid").read_text().strip()
        applied = self.join("BRA")
        self.say("Brazil joined while the network ran: its registration was approved, and:")
        self.detail(applied)
        if (self.hub_home / "run" / "nats-server.pid").read_text().strip() != pid:
            raise StepFailed("the hub was restarted to onboard Brazil")
        for state in ("MEX", "USA"):
            self.wait_for(
                f"{state}'s node to learn of Brazil from its directory bucket",
                self.knowing(state, ("BRA",)),
            )
        self.say("MEX's node verified Brazil's signed entry from its own directory bucket:")
        self.detail(
            self.cifta(
                "directory", "show", "BRA", "--lang", "pt", "--home", str(self.node_home("MEX"))
            )
        )
        self.start_node("BRA")
        body = self.cifta("template", "info.authorized_parties").encode()
        sent = json.loads(
            self.cifta(
                "send",
                "--home",
                str(self.node_home("BRA")),
                "--kind",
                "info.authorized_parties",
                "--to",
                "MEX,USA",
                "--handling",
                "H0",
                "--case",
                "BRA-PF-2026-0007",
                "--body",
                "-",
                "--json",
                stdin=body,
            )
        )["msg_id"]
        self.wait_for(
            "both receipts at BRA",
            lambda: set(self.recipient_states("BRA", sent).values()) == {"delivered"},
        )
        self.say(
            f"Brazil's node sent its register of authorized dealers (Art. XIII.1.a) to MEX and "
            f"USA ({sent}) and holds both signed receipts; the hub was never restarted "
            f"(pid {pid})."
        )

    def audit_trail(self, msg_id: str) -> None:
        """The report's life in the audit log, proven, under a checkpoint the nodes witnessed."""
        want = 6  # stored at USA and COL, delivered by both, opened at USA, replied by USA

        def witnessed() -> bool:
            n, proven, cosigners = self.audit_state(msg_id)
            return n >= want and proven == n and {"witness/MEX", "witness/USA"} <= cosigners

        self.wait_for("the report's life under a checkpoint witnessed by MEX and USA", witnessed)
        self.say(
            "The audit log holds the report's life, never its content; MEX's node fetched "
            "each event's inclusion proof and verified it against the signed checkpoint:"
        )
        self.detail(self.cifta("audit", "trail", msg_id, "--home", str(self.node_home("MEX"))))
        self.say("The secretariat recomputed the whole log and checked every signature:")
        self.detail(self.cifta("audit", "verify"))

    def teardown(self) -> list[str]:
        problems = []
        for state, proc in self.nodes.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    problems.append(f"{state}'s node did not stop on SIGTERM")
            if proc.returncode not in (0, None):
                problems.append(f"{state}'s node exited with {proc.returncode}")
        try:
            self.cifta("hub", "stop")
        except StepFailed as exc:
            problems.append(str(exc))
        return problems


def run(args: argparse.Namespace) -> int:
    demo = Demo(Path(args.workdir), Path(args.registry))
    print("CIFTA Exchange demonstration: a hub and three national nodes on this machine.\n")
    failed: Any = None
    try:
        demo.setup()
        report = demo.exchange()
        demo.onboard_live()
        demo.audit_trail(report)
    except StepFailed as exc:
        failed = exc
    except KeyboardInterrupt:
        failed = "interrupted"
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}"
    problems = demo.teardown()
    if failed is None and not problems:
        demo.say(
            "Nodes and hub stopped cleanly. Everything above was signed and end-to-end "
            "encrypted: the hub only ever held ciphertext."
        )
        print(f"\nDemo data (keys 0600, stores, logs) is in {demo.workdir}.")
        return 0
    print(f"\nFAILED: {failed or '; '.join(problems)}", file=sys.stderr)
    return 1
