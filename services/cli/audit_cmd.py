"""``cifta audit ...``: run the audit service, verify the log, follow a message, report.

The secretariat's side works on the hub home (``--hub-home``): ``run``, ``verify``, ``report``,
and ``trail`` with every event. A state's side (``--home``, its node home) asks the audit service
for the trail of one of its messages and checks every proof itself against the checkpoint, whose
signature it checks with the audit key it pinned.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.audit import AuditEvent, EventType
from services.audit.log import AuditLog
from services.audit.parking import Budget, Parking, PartyAlarm
from services.audit.service import AuditService, AuditSettings
from services.cli.messages import t
from services.cli.tables import dumps, table, utc_second
from services.core import subjects
from services.core.directory import Directory, DirectoryTrust
from services.core.heap import freeze_startup_heap
from services.core.logs import configure
from services.core.metrics import add_metrics_option, serve_metrics
from services.hub.home import HubHome
from services.i18n import N_
from services.node.application.trail import audit_trail, check_trail
from services.node.auditing import AuditKey
from services.node.settings import NodeSettings


class AuditCliError(Exception):
    pass


def _hub(args: argparse.Namespace) -> HubHome:
    return HubHome(Path(args.hub_home))


def _directory_of(hub: HubHome) -> Directory:
    service = hub.directory_service()
    trust = DirectoryTrust(service.root)
    trust.seed(service.all_signed())
    return trust.directory()


def _audit_private(hub: HubHome) -> Any:
    return hub.load_key(hub.audit_key_file).signing.ed25519


def audit_public(hub: HubHome) -> AuditKey:
    """The key the audit log's checkpoints verify with, as the nodes pin it."""
    return AuditKey(subjects.AUDIT_ORIGIN, _audit_private(hub).public_key())


def cmd_run(args: argparse.Namespace) -> int:
    """The audit service, until SIGINT or SIGTERM."""
    hub = _hub(args)
    configure(json=True, level=args.log_level)
    seen: dict[str, Any] = {"mtime": None, "directory": None, "checked": 0.0}
    entries = hub.directory_home / "entries"

    def directory() -> Directory:  # the secretariat's directory, read again when it changes
        now = time.monotonic()
        if now - seen["checked"] >= 1.0:  # one look at the files a second, not one per record
            seen["checked"] = now
            mtime = max((p.stat().st_mtime_ns for p in entries.glob("*.json")), default=0)
            if mtime != seen["mtime"]:
                seen["directory"], seen["mtime"] = _directory_of(hub), mtime
        return seen["directory"]  # type: ignore[no-any-return]

    settings = AuditSettings(
        url=args.url or hub.url(),
        seed=str(hub.user_seed("AUDIT", "audit")),
        parties=hub.registry().codes(),
        parties_source=lambda: hub.registry().codes(),
        checkpoint_every_s=args.checkpoint_every,
        fetch_batch=args.fetch_batch,
        budget=Budget(
            max_parked=args.park_max,
            max_age_s=args.park_max_age,
            unmatched_per_minute=args.unmatched_per_minute,
        ),
    )
    service = AuditService(AuditLog(hub.audit_log_path), _audit_private(hub), directory, settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = await serve_metrics(args.metrics, service.metrics.registry, service.metrics.ready)
        await service.start()
        freeze_startup_heap()  # full collections stop walking the start-up heap
        await stop.wait()
        await service.stop()
        if server is not None:
            await server.stop()

    asyncio.run(run())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    hub = _hub(args)
    log = AuditLog(hub.audit_log_path)
    try:
        directory = _directory_of(hub)
        witnesses: dict[str, Any] = {}
        for party in directory.parties():  # every signing key a party ever had: rotations
            entry = directory.entries[party]
            keys = [
                directory.signing_key(party, r.kid)
                for r in (entry.keys.signing if entry.keys else [])
            ]
            witnesses[f"witness/{party}"] = [k.key.ed25519 for k in keys if k is not None]
        audit_key = (
            AuditKey.load(Path(args.audit_key)).key  # pinned: not read from the same home
            if args.audit_key
            else _audit_private(hub).public_key()
        )
        problems = log.verify(subjects.AUDIT_ORIGIN, audit_key, witnesses)
        checkpoints = log.checkpoints()
        cosigned = log.cosignatures()
        alarms = log.alarms()
        party_alarms = Parking(log.db, Budget()).party_alarms()
    finally:
        log.close()
    print(f"{log.size} leaves recomputed; {len(checkpoints)} checkpoints; "
          f"{len(cosigned)} cosignatures")  # fmt: skip
    for size, witness, _ in cosigned[-5:]:
        print(f"  checkpoint {size} cosigned by {witness}")
    silent = never_cosigned(hub.registry().codes(), cosigned)
    if silent:
        print(f"WARNING: never cosigned a checkpoint: {', '.join(silent)} (a node without the "
              "audit key, audit.json, in its home does not witness)")  # fmt: skip
    for at, witness, detail in alarms:
        print(f"ALARM from {witness} at {at}: {detail}")
    for a in party_alarms[-20:]:  # the latest; `cifta audit alarms` lists them all
        print(_party_alarm_line(a))
    if problems:
        for p in problems:
            print(f"PROBLEM: {p.what}")
        return 1
    print("the log is intact: every node, checkpoint signature and cosignature verifies")
    return 1 if alarms else 0


def _party_alarm_line(a: PartyAlarm) -> str:
    return (
        f"RECORD ALARM {a.party} {a.minute}: {a.count} x {a.what} "
        f"(AUDIT stream {a.first_seq}..{a.last_seq})"
    )


def cmd_alarms(args: argparse.Namespace) -> int:
    """Every alarm: the witnesses' and the records the service refused or gave up on, per party
    and minute."""
    log = AuditLog(_hub(args).audit_log_path)
    try:
        alarms = log.alarms()
        party_alarms = Parking(log.db, Budget()).party_alarms(args.party)
    finally:
        log.close()
    for at, witness, detail in alarms:
        if args.party in (None, witness):
            print(f"ALARM from {witness} at {at}: {detail}")
    for a in party_alarms:
        print(_party_alarm_line(a))
    return 0


def never_cosigned(states: list[str], cosigned: list[tuple[int, str, str]]) -> list[str]:
    """The states with no cosignature on any checkpoint: witnesses that never witnessed."""
    witnessed = {w.removeprefix("witness/") for _, w, _ in cosigned}
    return [s for s in states if s not in witnessed]


def cmd_trail(args: argparse.Namespace) -> int:
    if args.home:  # a state: the audit service answers over the hub, the node checks
        settings = NodeSettings.load(Path(args.home))
        trail = asyncio.run(audit_trail(settings, args.msg_id))
    else:  # the secretariat: its own log, checked against its own key
        hub = _hub(args)
        log = AuditLog(hub.audit_log_path)
        try:
            answer = log.trail(args.msg_id, None)
        finally:
            log.close()
        if "error" in answer:
            raise AuditCliError(answer["error"])
        trail = check_trail(answer, audit_public(hub), args.msg_id)
    if args.json:
        print(dumps([{**e.record, "index": e.index, "proof_verified": e.proof_verified}
                     for e in trail.events]))  # fmt: skip
        return 0 if all(e.proof_verified for e in trail.events) else 1
    verified, failed = t(N_("verified")), t(N_("FAILED"))
    rows = [
        (e.index, utc_second(e.at), e.event, e.actor, e.officer or e.reason or "",
         verified if e.proof_verified else failed)
        for e in trail.events
    ]  # fmt: skip
    words = (
        t(N_("leaf")),
        t(N_("at")),
        t(N_("event")),
        t(N_("by")),
        t(N_("officer / reason")),
        t(N_("inclusion proof")),
    )
    print(table(list(words), rows))  # the events are codes, as --json and the log name them
    names = ", ".join(trail.signed_by)
    witnesses = ", ".join(trail.witnesses) or t(N_("no witness yet"))
    line = t(N_("checkpoint of {size} leaves signed by {names}; cosigned by {witnesses}"))
    print(line.format(size=trail.checkpoint_size, names=names, witnesses=witnesses))
    return 0 if trail.verified else 1


def _aware(text: str | None) -> datetime | None:
    """An ISO 8601 date or time; UTC when it says no time zone."""
    if not text:
        return None
    t = datetime.fromisoformat(text)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _aware_in(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def cmd_report(args: argparse.Namespace) -> int:
    hub = _hub(args)
    log = AuditLog(hub.audit_log_path)
    try:
        leaves = [e for _, e in log.events(args.state)]
    finally:
        log.close()
    events = [e for e in leaves if isinstance(e, AuditEvent)]
    unreadable = [e for e in leaves if not isinstance(e, AuditEvent)]
    since = _aware(args.since)
    until = _aware(args.until)
    events = [
        e for e in events
        if (since is None or e.occurred_at >= since) and (until is None or e.occurred_at < until)
    ]  # fmt: skip
    stored_all = [e for e in events if e.event is EventType.STORED]
    stored = [e for e in stored_all if not e.kind.startswith("protocol.")]
    by_family = Counter((e.kind.split(".")[0], e.handling.value) for e in stored)
    report: dict[str, Any] = {
        "state": args.state or "all",
        "messages": len({e.msg_id for e in stored}),
        "by_family_and_handling": {f"{f} {h}": n for (f, h), n in sorted(by_family.items())},
        "confidential": len({e.msg_id for e in stored if e.confidential}),
        "disclosure_notices": sum(1 for e in events if e.event is EventType.DISCLOSURE_NOTIFIED),
        "rejections": Counter(
            [e.reason.value for e in events if e.event is EventType.REJECTED and e.reason]
            + [e.reason.value for e in unreadable if _aware_in(e.occurred_at, since, until)]
        ),
        "opened": sum(1 for e in events if e.event is EventType.OPENED),
        "receipts_and_rejections": len({e.msg_id for e in stored_all})
        - len({e.msg_id for e in stored}),
    }
    if args.json:
        print(dumps(report))
        return 0
    print(f"audit report for {report['state']}: {report['messages']} messages, "
          f"{report['confidential']} confidential, {report['opened']} openings, "
          f"{report['disclosure_notices']} disclosure notices")  # fmt: skip
    rows = [(k, v) for k, v in report["by_family_and_handling"].items()]
    print(table(["family handling", "messages"], rows))
    if report["rejections"]:
        print(table(["rejection reason", "count"], list(report["rejections"].items())))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    import os

    a = sub.add_parser("audit", help=t(N_("the tamper-evident audit log")))
    a.add_argument("--hub-home", default=os.environ.get("CIFTA_HUB_HOME", "var/hub"))
    cmds = a.add_subparsers(dest="audit_command", required=True)
    p = cmds.add_parser("run", help="run the audit service")
    p.add_argument("--url")
    p.add_argument("--checkpoint-every", type=float, default=5.0, help="seconds")
    p.add_argument("--fetch-batch", type=int, default=256, help="records fetched per pull request")
    p.add_argument("--log-level", default="INFO")
    add_metrics_option(p)
    p.add_argument("--park-max", type=int, default=Budget.max_parked,
                   help="records each state may have waiting (parked) at once")  # fmt: skip
    p.add_argument("--park-max-age", type=float, default=Budget.max_age_s,
                   help="seconds a parked record may wait before it is given up")  # fmt: skip
    p.add_argument("--unmatched-per-minute", type=int, default=Budget.unmatched_per_minute,
                   help="unmatched leaves per state per minute (the rest: counted)")  # fmt: skip
    p.set_defaults(func=cmd_run)
    p = cmds.add_parser("verify", help="recompute the tree; check checkpoints and cosignatures")
    p.add_argument("--audit-key", help="the audit key file to check against (as nodes pin it)")
    p.set_defaults(func=cmd_verify)
    p = cmds.add_parser("alarms", help="the witnesses' alarms and the records refused per party")
    p.add_argument("--party", help="one party's only")
    p.set_defaults(func=cmd_alarms)
    p = cmds.add_parser("trail", help=t(N_("a message's life, each event with its proof checked")))
    p.add_argument("msg_id")
    p.add_argument("--home", default=os.environ.get("CIFTA_NODE_HOME"),
                   help=t(N_("ask as this node (otherwise: the secretariat's log)")))  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trail)
    p = cmds.add_parser("report", help="per state and period: messages, handling, rejections")
    p.add_argument("--state")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)


ERRORS = (AuditCliError,)
