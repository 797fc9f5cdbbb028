"""The operations guide's checklists (docs/operations.md, 1.9 "the first hub" and 1.10 "a new
state"), followed end to end: every command is read from the guide and run as its own ``cifta``
process against a real nats-server, for two states the demo does not use (CHL, URY), until a
message is delivered and its audit trail proven. A command changed in the guide is a command
changed here; a command the guide gains that this runner cannot run fails the test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from services.hub.home import PASSPHRASE_ENV, HubHome
from tests.support.hub import Hub
from tests.support.processes import cifta_process

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
NAMES = {"CHL": "Chile", "URY": "Uruguay"}
OFFICIAL = {
    "CHL": ("República de Chile", "Republic of Chile", "République du Chili", "República do Chile"),
    "URY": ("República Oriental del Uruguay", "Eastern Republic of Uruguay",
            "République orientale de l'Uruguay", "República Oriental do Uruguai"),
}  # fmt: skip
DEADLINE_S = 60.0


@dataclass(frozen=True)
class Step:
    number: int
    actor: str  # "state" or "secretariat"
    commands: tuple[str, ...]


def checklist(title: str) -> list[Step]:
    """The numbered steps of one checklist section of the guide, with their shell commands."""
    text = GUIDE.read_text()
    start = text.index(f"### {title}")
    end = text.find("\n##", start + 4)
    section = text[start:end]
    steps = []
    for item in re.split(r"\n(?=\d+\. )", section)[1:]:
        head = re.match(r"(\d+)\. \*\*(state|secretariat)\*\*", item)
        assert head, f"a step of {title!r} does not start with its number and who does it"
        commands = []
        for block in re.findall(r"```sh\n(.*?)```", item, re.S):
            commands += [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]
        steps.append(Step(int(head[1]), head[2], tuple(commands)))
    assert [s.number for s in steps] == list(range(1, len(steps) + 1)), title
    return steps


@dataclass
class Desk:
    """Where one party types the commands: its working folder and its variables."""

    cwd: Path
    variables: dict[str, str]


@dataclass
class Runner:
    """Runs the guide's commands as the operator would, one ``cifta`` process each."""

    tmp: Path
    env: dict[str, str]
    stack: ExitStack
    desks: dict[str, Desk] = field(default_factory=dict)
    sent: dict[str, str] = field(default_factory=dict)  # state -> msg_id of its first message
    services: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)

    def desk(self, party: str) -> Desk:
        if party not in self.desks:
            cwd = self.tmp / f"desk-{party}"
            cwd.mkdir()
            self.desks[party] = Desk(cwd, {})
        return self.desks[party]

    def run_step(self, step: Step, state: str) -> None:
        party = "SEC" if step.actor == "secretariat" else state
        desk = self.desk(party)
        for line in step.commands:
            variables = {**self.variables(state), **desk.variables}  # a line may set the next's
            argv = [_substitute(token, variables, line) for token in shlex.split(line)]
            self.run(argv, desk, state)

    def run_steps(self, steps: list[Step]) -> None:
        """Each step by every state before the next: a first message waits for its recipient's
        node to run."""
        for step in steps:
            for state in NAMES:
                self.run_step(step, state)

    def variables(self, state: str) -> dict[str, str]:
        return {
            "STATE": state,
            "NAME": NAMES[state],
            "NODE_HOME": str(self.tmp / "nodes" / state),
            "BUNDLE": str(self.tmp / f"bundle-{state}"),
            "HUB_URL": self.env.get("CIFTA_NODE_HUB_URL", "nats://127.0.0.1:4222"),
            "PEER": next(p for p in NAMES if p != state),
            "KID": self.desk("SEC").variables.get(f"KID_{state}", ""),
            "MSG_ID": self.sent.get(state, ""),
            "OFFICER": f"Liaison officer {state}|CIFTA liaison officer|National point of contact",
        }

    def run(self, argv: list[str], desk: Desk, state: str) -> None:
        if argv[0] == "cp":  # `cp SRC/* DST/`: the bundle's files into the node home
            assert len(argv) == 3 and argv[1].endswith("/*"), f"unexpected copy {argv}"
            for f in Path(argv[1][:-2]).iterdir():
                shutil.copy(f, Path(argv[2]) / f.name)
            return
        assert argv[0] == "cifta", f"the checklist runs {argv[0]!r}: not a cifta command"
        args, out = argv[1:], None
        if ">" in args:  # `cifta template ... > file`
            at = args.index(">")
            args, out = args[:at], desk.cwd / args[at + 1]
        if args[:2] == ["node", "run"]:
            self.background(args, state)
        elif args[:2] == ["audit", "run"]:
            self.background(args, "audit")
        elif args[:2] == ["directory", "show"]:  # the node learns the peer from the hub
            self.until(args, desk, lambda done: done.returncode == 0)
        elif args[:1] == ["status"]:
            self.until(args, desk, lambda done: "delivered" in done.stdout)
        elif args[:2] == ["audit", "trail"]:
            # proven (exit 0) and holding the hub's and the recipient's leaves
            self.until(args, desk, lambda done: done.returncode == 0
                       and {"stored", "delivered"} <= set(done.stdout.split()))  # fmt: skip
        else:
            done = self.cifta(args, desk)
            assert done.returncode == 0, f"`cifta {' '.join(args)}` failed: {done.stderr}"
            if out is not None:
                out.write_text(done.stdout)
            self.took(args, done.stdout, desk, state)

    def took(self, args: list[str], stdout: str, desk: Desk, state: str) -> None:
        """What the operator reads off a command's output and acts on."""
        if args[:2] == ["directory", "register"]:
            kid = re.search(r"signing key id ([0-9a-f]{32})", stdout)
            assert kid, stdout
            # read out by telephone; the secretariat files the request as request-<STATE>.json
            self.desk("SEC").variables[f"KID_{state}"] = kid[1]
            shutil.copy(desk.cwd / "request.json", self.desk("SEC").cwd / f"request-{state}.json")
        elif args[:2] == ["directory", "template"]:
            fill_in(desk.cwd / "details.json", state)
        elif args[:1] == ["send"]:
            self.sent[state] = stdout.split()[2]  # "queued KIND MSG_ID for PEER"
        elif args[:2] == ["hub", "start"]:
            self.env["CIFTA_NODE_HUB_URL"] = stdout.strip().rsplit(" ", 1)[-1]

    def cifta(self, args: list[str], desk: Desk) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli.main", *args],
            cwd=desk.cwd, env=self.env, capture_output=True, text=True, check=False,
        )  # fmt: skip

    def until(
        self,
        args: list[str],
        desk: Desk,
        holds: Callable[[subprocess.CompletedProcess[str]], bool],
    ) -> None:
        """Run a command again until its output says what the guide says to wait for."""
        deadline = time.monotonic() + DEADLINE_S
        while not holds(done := self.cifta(args, desk)):
            for name, (proc, log) in self.services.items():
                assert proc.poll() is None, f"{name} exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"`cifta {' '.join(args)}`: {done.stdout}"
            time.sleep(0.5)  # an operator running the command again, with a deadline

    def background(self, args: list[str], name: str) -> None:
        """A service the guide runs under the service manager: a process until the test ends."""
        log = self.tmp / f"{name}.log"
        proc = self.stack.enter_context(cifta_process(args, log, env=dict(self.env)))
        self.services[name] = (proc, log)  # checked to be alive while the test waits on it


def _substitute(token: str, variables: dict[str, str], line: str) -> str:
    def value(m: re.Match[str]) -> str:
        assert variables.get(m[1]), f"${m[1]} in `{line}` has no value here"
        return variables[m[1]]

    token = re.sub(r"\$([A-Z_]+)", value, token)
    return "-1" if token == "4222" else token  # the hub's port: a free one, on loopback


def fill_in(details: Path, state: str) -> None:
    """The person's part of step 2: the template's example replaced with the state's details."""
    form = json.loads(details.read_text())
    es, en, fr, pt = OFFICIAL[state]
    form["names"] = {"es": es, "en": en, "fr": fr, "pt": pt}
    form["point_of_contact"] = f"National point of contact of {en}"
    form["contacts"][0].update(name=f"Liaison officer {state}",
                               email=f"cifta@{state.lower()}.example.org")  # fmt: skip
    details.write_text(json.dumps(form))


@contextmanager
def runner(tmp: Path, hub_home: Path) -> Iterator[Runner]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CIFTA_")},
        "CIFTA_HUB_HOME": str(hub_home),
        PASSPHRASE_ENV: secrets.token_urlsafe(16),
        "CIFTA_NODE_KEY_PASSPHRASE": secrets.token_urlsafe(16),
        "CIFTA_NODE_WITNESS_INTERVAL_S": "1",
        "CIFTA_NODE_LOG_LEVEL": "WARNING",
    }
    (tmp / "nodes").mkdir()
    with ExitStack() as stack:
        stack.callback(HubHome(hub_home).stop)  # after the nodes and the audit service
        yield Runner(tmp, env, stack)


def split_at_approval(steps: list[Step]) -> tuple[list[Step], Step, list[Step]]:
    [approve] = [s for s in steps if any("directory approve" in c for c in s.commands)]
    at = steps.index(approve)
    return steps[:at], approve, steps[at + 1 :]


def test_first_hub_checklist_brings_two_states_to_an_audited_exchange(tmp_path: Path) -> None:
    hub_steps = checklist("1.9 Checklist: the first hub")
    before, _, after = split_at_approval(checklist("1.10 Checklist: a new state"))
    registry = tmp_path / "desk-SEC" / "registry.json"
    with runner(tmp_path, tmp_path / "hub") as r:
        r.desk("SEC")
        registry.write_text(json.dumps({
            "format": "cifta-registry-v1", "version": 1, "secretariat": "SEC",
            "states": [{"code": s, "name": n} for s, n in NAMES.items()],
        }))  # fmt: skip
        for state in NAMES:
            for step in before:
                r.run_step(step, state)
        for step in hub_steps:
            for state in NAMES if any("$STATE" in c for c in step.commands) else ["CHL"]:
                r.run_step(step, state)
        r.run_steps(after)
        assert set(r.sent) == set(NAMES)
        assert_sealed(tmp_path / "hub")


def test_new_state_checklist_joins_two_states_to_a_running_hub(hub: Hub, tmp_path: Path) -> None:
    steps = checklist("1.10 Checklist: a new state")
    with runner(tmp_path, hub.home.root) as r:
        r.env["CIFTA_NODE_HUB_URL"] = hub.url
        r.background(["audit", "run"], "audit")
        _, approve, _ = split_at_approval(steps)
        for state in NAMES:  # each registers and is approved while the hub runs
            for step in steps[: approve.number]:
                r.run_step(step, state)
        r.run_steps(steps[approve.number :])
        assert set(r.sent) == set(NAMES)


def assert_sealed(hub_home: Path) -> None:
    for name in ("root.key.json", "SEC.key.json", "audit.key.json"):
        data = json.loads((hub_home / "keys" / name).read_text())
        assert data["format"].endswith("+scrypt-aes256gcm"), name
