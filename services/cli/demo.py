"""``cifta demo``: the whole network on this machine, driven through the same commands people use.

The secretariat sets up a hub for MEX, USA and COL; each state initialises its node; MEX sends a
trafficking-routes report (Art. XIII.1.c, H2, confidential) to USA and COL while COL's node is
offline; USA reads it; COL's node starts later and still receives it; both signed receipts reach
MEX; USA replies in the same case. Brazil joins live. Then the Convention's procedures: a tracing
request answered (Art. XIII.3), a licensed transfer from notice to receipt confirmation (Art. IX),
a controlled delivery from proposal to closure (Art. XVIII), and a forwarding that Art. XII
refuses until the originator consents; each with its audit trail. Last, a blind record lookup
finds the one state holding a record of a seized pistol and becomes a tracing request to it.
Every step is a real process
(nats-server, the nodes' ``cifta node run``, and one ``cifta`` command per officer action). Exits
non-zero if a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.audit.log import AuditLog
from services.cli.demo_photo import markings_photo
from services.hub.home import PASSPHRASE_ENV
from services.node.application import Application, open_node
from services.node.settings import NodeSettings

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
        self.apps: dict[str, Application] = {}
        self.env = dict(
            os.environ, CIFTA_HUB_HOME=str(self.hub_home), CIFTA_NODE_WITNESS_INTERVAL_S="1"
        )
        # every officer's action is recorded under a name: this one, where a step names nobody
        self.env.setdefault("CIFTA_OFFICER", "Demo Officer|CIFTA liaison officer|National point "
                            "of contact")  # fmt: skip
        # the secretariat's keys sealed as in production, under a passphrase made for this run
        # (the demo recreates its directory every time) unless one is given
        self.env.setdefault(PASSPHRASE_ENV, secrets.token_urlsafe(24))
        self.step_no = 0

    # -- helpers ---------------------------------------------------------------------------------

    def say(self, sentence: str) -> None:
        self.step_no += 1
        print(f"{self.step_no:>2}. {sentence}", flush=True)

    def detail(self, text: str) -> None:
        for line in text.rstrip().splitlines():
            print(f"      {line}", flush=True)

    def run_cifta(self, args: tuple[str, ...], stdin: bytes | None = None) -> Any:
        """One ``cifta`` command as a separate process, as an officer or operator runs it."""
        cmd = [sys.executable, "-m", "services.cli.main", *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, env=self.env, check=False)  # noqa: S603

    def cifta(self, *args: str, stdin: bytes | None = None) -> str:
        """Run one ``cifta`` command; fail the step if it fails."""
        done = self.run_cifta(args, stdin)
        if done.returncode != 0:
            raise StepFailed(f"`cifta {' '.join(args)}` failed: {done.stderr.decode().strip()}")
        return str(done.stdout.decode())

    def refused(self, *args: str) -> str:
        """Run one ``cifta`` command that must be refused; its error message."""
        done = self.run_cifta(args)
        if done.returncode == 0:
            raise StepFailed(f"`cifta {' '.join(args)}` was not refused")
        return str(done.stderr.decode())

    def spawn(self, name: str, log: Path, *args: str) -> None:
        """Start a long-running ``cifta`` process (a node, the audit service) logging to ``log``."""
        with log.open("ab") as out:  # the child keeps its own descriptor
            self.nodes[name] = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "services.cli.main", *args],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            )  # fmt: skip

    def start_audit(self) -> None:
        self.spawn("AUDIT", self.hub_home / "audit.log", "audit", "run", "--checkpoint-every",
                   "1", "--log-level", "WARNING")  # fmt: skip

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
        home = self.node_home(state)
        self.spawn(state, home / "node.log", "node", "run", "--home", str(home))

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            for state, proc in self.nodes.items():
                if proc.poll() is not None:
                    raise StepFailed(f"{state}'s node exited ({proc.returncode}); see its node.log")
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {TIMEOUT_S:.0f}s waiting for {what}")
            time.sleep(0.1)  # polling the node's store: a condition with a deadline

    def node(self, state: str) -> Application:
        """``state``'s node as its officers see it, opened once and read while the node writes
        its store (WAL)."""
        if state not in self.apps:
            self.apps[state] = open_node(self.node_home(state), self.env)
        return self.apps[state]

    def stored(self, state: str, msg_id: str) -> bool:
        return self.node(state).has_message(msg_id)

    def knowing(self, state: str, parties: tuple[str, ...]) -> Callable[[], bool]:
        """A condition: ``state``'s node has verified the directory entries of ``parties``."""
        settings = NodeSettings.load(self.node_home(state))

        def knows() -> bool:
            return set(parties) <= set(settings.directory_trust().directory().parties())

        return knows

    def storing(self, state: str, msg_id: str) -> Callable[[], bool]:
        return lambda: self.stored(state, msg_id)

    def holding(self, state: str, custodian: str) -> Callable[[], bool]:
        """A condition: ``state``'s node sees ``custodian`` holding the operation's consignment."""
        return lambda: self.node(state).operations()[0].custody == custodian

    def home(self, state: str) -> str:
        return str(self.node_home(state))

    def template(self, kind: str) -> dict[str, Any]:
        return dict(json.loads(self.cifta("template", kind, "--example")))

    def queued(self, *args: str, body: dict[str, Any] | None = None) -> str:
        """Run an officer's command that queues a message; its msg_id."""
        stdin = None if body is None else json.dumps(body).encode()
        return str(json.loads(self.cifta(*args, "--json", stdin=stdin))["msg_id"])

    def recipient_states(self, state: str, msg_id: str) -> dict[str, str]:
        return {s.recipient: s.state for s in self.node(state).status(msg_id)[1]}

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

        report = self.cifta("template", "info.trafficking_routes", "--example").encode()
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
                "Special Agent D. Whitfield|Special Agent|HSI",
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

        answer = self.cifta("template", "info.concealment_methods", "--example").encode()
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
        body = self.cifta("template", "info.authorized_parties", "--example").encode()
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

    # -- blind record lookup (docs/lookup.md) ------------------------------------------------------

    def lookup(self) -> None:
        """COL holds a record of a pistol; MEX finds it without telling anyone what it asked."""
        records = self.workdir / "col-records.csv"
        records.write_text(
            "make,model,calibre,serial,category,reference\n"
            "Sig Sauer,P320,9x19mm,58C-207741,lost_stolen,DIJIN-2025-3390\n"
            "Colt,M1911A1,.45 ACP,CP 110452,seized,DIJIN-2026-0071\n"
        )
        self.cifta("records", "import", "--home", self.home("COL"), str(records))
        for state in ("MEX", "USA"):
            self.cifta("records", "publish", "--home", self.home(state))
        self.say(
            "COL flagged two records for blind lookup; every state published its signed filter of "
            "OPRF outputs (RFC 9497) to the hub, which cannot read a serial number in it."
        )
        request = self.workdir / "lookup-trace.json"
        out = self.cifta(
            "lookup", "--home", self.home("MEX"), "--make", "SIG SAUER", "--model", "P320",
            "--calibre", "9mm", "--serial", "58c 2O7741", "--trace", str(request),
        )  # fmt: skip
        self.say(
            "A MEX officer asked every state at once about a seized pistol (serial typed with a "
            "letter O): each evaluated a blinded value it cannot read, and only MEX learned who "
            "holds a record:"
        )
        self.detail(out)
        sent = self.cifta("trace", "new", "--home", self.home("MEX"), "--body", str(request),
                          "--to", "COL", "--case", "FGR-SIN-2026-1300")  # fmt: skip
        req_id = sent.split()[2]
        self.wait_for("COL to store the tracing request", lambda: self.stored("COL", req_id))
        self.say("The hit became a tracing request to COL (Art. XIII.3), sealed as any other:")
        self.detail(sent)
        self.say("COL's lookup counts (who asked, how often; never what):")
        self.detail(self.cifta("records", "stats", "--home", self.home("COL")))

    # -- the Convention's procedures --------------------------------------------------------------

    def tracing(self) -> str:
        """MEX traces a pistol seized in Culiacán: made in Austria, last imported into the USA."""
        request = self.template("tracing.request")
        mex, usa = self.home("MEX"), self.home("USA")
        photo = markings_photo(self.workdir / "markings-serial.png")  # Art. VI.1.a markings
        out = self.cifta(
            "trace", "new", "--home", mex, "--body", "-", "--priority", "urgent",
            "--justification", "Linked to an ongoing homicide investigation; suspects in custody",
            "--case", "FGR-SIN-2026-1187", "--attach", str(photo),
            stdin=json.dumps(request).encode(),
        )  # fmt: skip
        req_id = out.split()[2]
        self.say(
            "MEX filed an urgent tracing request (Art. XIII.3) for a pistol seized in Culiacán; "
            "with no state named, it went to the country of last legal import:"
        )
        self.detail(out)
        self.wait_for("USA to store the tracing request", lambda: self.stored("USA", req_id))

        def receipted() -> bool:  # USA's receipt follows its fetching and verifying the file
            _, statuses = self.node("MEX").status(req_id)
            return any(s.recipient == "USA" and s.state == "delivered" for s in statuses)

        self.wait_for("USA's receipt, after it fetched the photograph of the markings", receipted)
        self.say("The photograph of the markings travelled with it, encrypted end to end; USA's "
                 "node fetched and verified it before its receipt, which names it:")  # fmt: skip
        saved = self.workdir / "USA-markings.png"
        self.detail(self.cifta("attachment", "get", req_id, photo.name, "--home", usa,
                               "--officer", "NTC Analyst 07|Firearms tracing analyst|ATF NTC",
                               "--out", str(saved)))  # fmt: skip
        self.cifta("trace", "respond", "--home", usa, req_id, "--ack", "--reference",
                   "NTC-2026-448120")  # fmt: skip
        answer = self.template("tracing.response") | {"request_msg_id": req_id}
        resp_id = self.queued("trace", "respond", "--home", usa, req_id, "--body", "-", body=answer)
        self.wait_for("USA's answer at MEX", lambda: self.stored("MEX", resp_id))
        self.say(
            "USA acknowledged it, then answered: found, with the chain of transfers from the "
            "Austrian maker to the last retail sale in Arizona. MEX's view, and the response times "
            "the Conference of States Parties asks about:"
        )
        self.detail(self.cifta("trace", "list", "--home", mex))
        self.detail(self.cifta("trace", "stats", "--home", mex))
        return req_id

    def transfer(self) -> str:
        """USA licenses pistols and ammunition for Colombia, by air through Mexico City."""
        notice = self.template("transfer.notice") | {"transit_states": ["MEX"]}
        usa, col, mex = self.home("USA"), self.home("COL"), self.home("MEX")
        tid = notice["transfer_id"]
        notice_id = self.queued("transfer", "new", "--home", usa, "--body", "-", body=notice)
        self.say(
            f"USA notified COL (importing) and MEX (transit) of transfer {tid}: export licence, "
            "import licence, 200 pistols and 100,000 cartridges (Art. IX)."
        )
        for state in ("COL", "MEX"):
            self.wait_for(f"{state} to store the notice", self.storing(state, notice_id))
        refused = self.refused("transfer", "dispatch", "--home", usa, tid, "--carrier",
                               "Avianca Cargo", "--document", "AWB 134-55120033")  # fmt: skip
        self.say("USA's officer tried to dispatch at once; the node refused (Art. IX.2, IX.3):")
        self.detail(refused)
        ids = [
            self.queued("transfer", "confirm", "--home", col, tid, "--officer",
                        "Cap. Laura Rincón|Jefe de control de importaciones|DCCA"),
            self.queued("transfer", "confirm", "--home", mex, tid, "--number",
                        "SEDENA-DGRFAE-TR-2026-3310", "--officer",
                        "Lic. Jorge Salas|Autorizaciones de tránsito|SEDENA"),
        ]  # fmt: skip
        self.wait_for("both confirmations at USA", lambda: all(self.stored("USA", i) for i in ids))
        dispatch = self.queued("transfer", "dispatch", "--home", usa, tid, "--carrier",
                               "Avianca Cargo", "--document", "AWB 134-55120033",
                               "--seal", "US-CBP-88412")  # fmt: skip
        self.say(
            "COL confirmed its import licence and MEX authorized the transit; USA's node then "
            "let it dispatch:"
        )
        self.detail(self.cifta("transfer", "list", "--home", usa))
        self.wait_for("the dispatch notice at COL", lambda: self.stored("COL", dispatch))
        receipt = self.queued("transfer", "receive", "--home", col, tid, "--place",
                              "Bogotá, El Dorado cargo terminal", "--line", "2=99000",
                              "--remark", "2=one case of 1,000 cartridges missing on arrival",
                              "--officer", "Cap. Laura Rincón|Jefe de control|DCCA")  # fmt: skip

        def reported() -> bool:
            ts = self.node("USA").transfers()
            return self.stored("USA", receipt) and ts[0].stage == "discrepancy"

        self.wait_for("COL's receipt confirmation and discrepancy at USA", reported)
        self.say(
            "COL confirmed receipt with the quantities received (Art. IX.4); one case short, so "
            "its node also sent a discrepancy report. USA's view:"
        )
        self.detail(self.cifta("transfer", "list", "--home", usa))
        return receipt

    def controlled_delivery(self) -> str:
        """COL proposes to follow a container from Cartagena through Mexico to Texas."""
        proposal = self.template("delivery.proposal") | {
            "operation_id": "CD-COL-2026-044",
            "participants": ["COL", "MEX", "USA"],
            "route": [
                {"from_state": "COL", "to_state": "MEX", "border_crossing":
                 "Cartagena to Manzanillo (sea)", "mode": "sea"},
                {"from_state": "MEX", "to_state": "USA", "border_crossing": "Laredo",
                 "mode": "road"},
            ],
            "contact": {"name": "My. Andrés Cárdenas", "position": "Jefe de entregas vigiladas",
                        "agency": "Policía Nacional de Colombia, DIJIN"},
        }  # fmt: skip
        op = proposal["operation_id"]
        col, mex, usa = self.home("COL"), self.home("MEX"), self.home("USA")
        prop_id = self.queued("delivery", "propose", "--home", col, "--body", "-", body=proposal)
        for state in ("MEX", "USA"):
            self.wait_for(f"{state} to store the proposal", self.storing(state, prop_id))
        for home, officer in (
            (mex, "Cmdte. Sergio Ibarra|Comandante|Guardia Nacional"),
            (usa, "SA M. Okafor|Group supervisor|HSI"),
        ):
            self.queued("delivery", "consent", "--home", home, op, "--officer", officer)

        def active(state: str) -> Callable[[], bool]:
            return lambda: self.node(state).operations()[0].phase == "active"

        for state in ("COL", "MEX", "USA"):
            self.wait_for(f"the operation to be active at {state}", active(state))
        self.say(
            f"COL proposed controlled delivery {op} (Art. XVIII) to MEX and USA; each consented, "
            "case by case, and the operation became active at every participant."
        )
        self.queued("delivery", "handover", "--home", col, op, "--from", "COL", "--to", "MEX",
                    "--place", "Port of Manzanillo, berth 14", "--container", "MSCU 7781230",
                    "--seal", "CO-DIAN-2210984")  # fmt: skip
        self.wait_for("MEX to hold the consignment", self.holding("MEX", "MEX"))
        inventory = self.workdir / "inventory.json"
        replicas = {"line": 1, "category": "firearm", "quantity": 40,
                    "description": "rifles replaced by inert replicas"}  # fmt: skip
        inventory.write_text(json.dumps([replicas]))
        self.queued("delivery", "intercept", "--home", mex, op, "--decision",
                    "items_substituted", "--inventory", str(inventory),
                    "--new-seal", "MX-GN-2026-55120")  # fmt: skip
        self.queued("delivery", "handover", "--home", mex, op, "--from", "MEX", "--to", "USA",
                    "--place", "Laredo, World Trade Bridge",
                    "--seal", "MX-GN-2026-55120")  # fmt: skip
        self.wait_for("USA to hold the consignment", self.holding("COL", "USA"))
        closure = self.queued("delivery", "close", "--home", col, op, "--outcome", "interdicted",
                              "--summary", "Receivers identified in Laredo, TX; four arrests; "
                              "replicas recovered.")  # fmt: skip

        def closed(state: str) -> Callable[[], bool]:
            return lambda: self.node(state).operations()[0].phase == "closed"

        for state in ("MEX", "USA"):
            self.wait_for(f"the closure at {state}", closed(state))
        timelines = {s: self.cifta("delivery", "timeline", "--home", self.home(s), op)
                     for s in ("COL", "MEX", "USA")}  # fmt: skip
        if len(set(timelines.values())) != 1:
            raise StepFailed("the participants do not hold the same timeline")
        self.say(
            "Custody passed COL -> MEX at Manzanillo, MEX substituted the rifles, custody passed "
            "MEX -> USA at Laredo, and COL closed the operation. COL, MEX and USA hold the same "
            "timeline:"
        )
        self.detail(timelines["COL"])
        return closure

    def confidentiality(self, report: str) -> str:
        """USA wants to share MEX's H2 report with Brazil: Art. XII says ask MEX first."""
        usa, mex = self.home("USA"), self.home("MEX")
        refused = self.refused("forward", "--home", usa, report, "--to", "BRA", "--officer",
                               "Special Agent D. Whitfield|Special Agent|HSI")  # fmt: skip
        self.say("USA tried to forward MEX's H2 report to Brazil; its node refused (Art. XII):")
        self.detail(refused)
        ask = self.queued("consent", "request", "--home", usa, report, "--use", "onward_sharing",
                          "--to", "BRA", "--purpose", "The route ends at a port Brazil's "
                          "federal police watch.")  # fmt: skip
        self.wait_for("the consent request at MEX", lambda: self.stored("MEX", ask))
        answer = self.queued("consent", "answer", "--home", mex, ask, "--decision", "granted")
        self.wait_for("MEX's consent at USA", lambda: self.stored("USA", answer))
        fwd = self.queued("forward", "--home", usa, report, "--to", "BRA", "--officer",
                          "Special Agent D. Whitfield|Special Agent|HSI")  # fmt: skip
        self.wait_for("the forwarded report at BRA", lambda: self.stored("BRA", fwd))
        self.say(
            "USA asked MEX for consent to share with Brazil, MEX granted it, and USA's node "
            f"forwarded the report ({fwd}), keeping its H2 handling."
        )
        return report

    def trail(self, what: str, msg_id: str, want: int) -> None:
        """One message's life in the audit log, under a witnessed checkpoint."""

        def witnessed() -> bool:
            n, proven, cosigners = self.audit_state(msg_id)
            return n >= want and proven == n and bool(cosigners)

        self.wait_for(f"the audit trail of {what}", witnessed)
        self.say(f"The audit trail of {what}, each event proven against the signed checkpoint:")
        self.detail(self.cifta("audit", "trail", msg_id, "--home", str(self.node_home("MEX"))))

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
        for node in self.apps.values():
            node.close()
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
        request = demo.tracing()
        demo.trail("the tracing request", request, 4)  # stored, delivered, replied twice at USA
        receipt = demo.transfer()
        demo.trail("COL's receipt confirmation", receipt, 4)  # stored, delivered at USA and MEX
        closure = demo.controlled_delivery()
        demo.trail("the closure of the controlled delivery", closure, 4)
        demo.confidentiality(report)
        demo.trail("MEX's report, now with its Art. XII steps", report, 9)
        demo.lookup()
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
