"""``cifta secretariat ...``: the secretariat's desk on the command line, and its web console.

Works on the hub home (``--hub-home``, or ``CIFTA_HUB_HOME``): requests waiting for review,
approval by the key id read out by telephone, the network's health, the audit log's standing and
the study's statistics. The same application layer serves ``cifta secretariat console``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from services import i18n
from services.cli import officer_cmd
from services.cli.console_cmd import add_serving_options, exposed, trusted_proxies
from services.cli.tables import dumps, table
from services.core.accounts import AccountError, Accounts
from services.hub.home import HubError, HubHome
from services.secretariat.audit_desk import Verifier, audit_view
from services.secretariat.directory_desk import DirectoryDesk, apply_to_hub, read_request_file
from services.secretariat.errors import ErrorCode, SecretariatError
from services.secretariat.network import network_view
from services.secretariat.statistics import messages_csv, study_statistics, tracing_csv

#: What each refusal says on the command line (the console says it in four languages).
SAYS = {
    ErrorCode.NO_SUCH_REQUEST: "no request {request} is waiting for review",
    ErrorCode.NOT_A_REQUEST: "this is not a signed request (from `cifta directory register` "
    "or `cifta directory rotate`)",
    ErrorCode.REQUEST_TOO_LARGE: "a signed request is at most {limit} bytes: this file is not one",
    ErrorCode.KEY_ID_MISSING: "type the signing key id the state read out to you by telephone",
    ErrorCode.KEY_ID_MALFORMED: "a key id is 32 hexadecimal characters (0-9, a-f); "
    "{length} were typed",
    ErrorCode.KEY_ID_MISMATCH: "the key id typed is not the one in {party}'s request: check it "
    "again with {party} by telephone; nothing was approved",
    ErrorCode.NOT_A_REGISTRATION: "request {request} is not a registration",
    ErrorCode.NOT_A_ROTATION: "request {request} is not a rotation",
    ErrorCode.DIRECTORY_REFUSED: "the directory refused it: {detail}",
    ErrorCode.NO_SUCH_PARTY: "{party} is not in the directory",
    ErrorCode.NO_SUCH_KEY: "{party} has no key {kid}",
    ErrorCode.REVOCATION_TIME: "a revocation cannot take effect in the future",
    ErrorCode.HUB_NOT_RUNNING: "the hub is not running: run `cifta directory publish` once it is",
    ErrorCode.HUB_UNREACHABLE: "the hub cannot be reached: is it running?",
    ErrorCode.HUB_REFUSED: "the hub refused it ({error}): see the hub's log, then run "
    "`cifta directory publish`",
    ErrorCode.NO_AUDIT_LOG: "there is no audit log in this hub home yet (`cifta audit run`)",
    ErrorCode.VERIFICATION_RUNNING: "a verification is already running",
    ErrorCode.BAD_INPUT: "{field}: {expected}",
}


def says(error: SecretariatError) -> str:
    """One line for a person, naming what is wrong."""
    try:
        return SAYS[error.code].format(**error.params)
    except KeyError:  # a parameter the text does not name: still one honest line
        return error.code.value


def _hub(args: argparse.Namespace) -> HubHome:
    return HubHome(Path(args.hub_home))


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "never"


def cmd_requests(args: argparse.Namespace) -> int:
    pending = DirectoryDesk(_hub(args)).pending()
    rows = [(p.request_id, p.kind, p.party, _when(p.requested_at),
             p.names.en if p.names else "", p.point_of_contact or "") for p in pending]  # fmt: skip
    print(table(["request", "kind", "party", "requested", "name", "point of contact"], rows))
    return 0


def cmd_file(args: argparse.Namespace) -> int:
    pending = DirectoryDesk(_hub(args)).file_request(read_request_file(Path(args.request)))
    print(f"request {pending.request_id}: {pending.kind} of {pending.party}, waiting for review")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    desk = DirectoryDesk(_hub(args))
    pending = desk.request(args.request_id)
    if pending.kind == "registration":
        approval = desk.approve_registration(args.request_id, args.confirm or "")
    else:
        approval = desk.approve_rotation(args.request_id)
    print(f"{approval.party}: directory entry version {approval.version} signed")
    asyncio.run(apply_to_hub(desk, approval.party if approval.new_state else None))
    print("the hub applies it: configuration, provisioning, directory published")
    return 0


def cmd_decline(args: argparse.Namespace) -> int:
    pending = DirectoryDesk(_hub(args)).decline(args.request_id)
    print(f"request {args.request_id} of {pending.party} declined: nothing signed")
    return 0


def cmd_network(args: argparse.Namespace) -> int:
    view = asyncio.run(network_view(_hub(args), datetime.now(UTC)))
    if args.json:
        print(dumps(view.model_dump(mode="json")))
        return 0
    rows = [
        (s.state, "yes" if s.connected else "no", s.backlog, s.redelivered, s.past_last_attempt,
         s.quarantined, _when(s.last_activity), f"{s.storage_ratio:.1%}")
        for s in view.states
    ]  # fmt: skip
    print(table(["state", "connected", "backlog", "redelivered", "past last attempt",
                 "quarantined", "last activity", "storage"], rows))  # fmt: skip
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    hub = _hub(args)
    view = audit_view(hub)
    print(f"{view.size} leaves, {view.checkpoints} checkpoints, latest of {view.latest_checkpoint}")
    rows = [(w.state, w.last_cosigned if w.last_cosigned is not None else "never",
             w.entries_behind, w.checkpoints_behind) for w in view.witnesses]  # fmt: skip
    print(table(["witness", "last cosigned", "entries behind", "checkpoints behind"], rows))
    if args.verify:
        state = Verifier(hub).run()
        print(f"verification: {state.status} ({state.done} of {state.total} leaves)")
        for problem in state.problems:
            print(f"  {problem}")
        return 0 if state.status == "intact" else 1
    return 0


def cmd_statistics(args: argparse.Namespace) -> int:
    stats = study_statistics(_hub(args).audit_log_path)
    if args.csv:
        sys.stdout.write(messages_csv(stats) if args.csv == "messages" else tracing_csv(stats))
        return 0
    print(table(["month", "family", "messages"],
                [(r.month, r.family, r.messages) for r in stats.by_family_month]))  # fmt: skip
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    """Serve the secretariat's console (loopback by default)."""
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if exposed(args):
        print(f"error: --host {args.host} listens beyond this machine without TLS: give "
              "--tls-cert and --tls-key, or --behind-tls-proxy if a TLS-terminating proxy is in "
              "front of it", file=sys.stderr)  # fmt: skip
        return 2
    hub = _hub(args)
    hub.registry()  # a clear error when there is no hub home
    import uvicorn

    from services.console.secretariat.app import create_secretariat_app

    try:
        proxies = trusted_proxies(args)
    except ValueError as exc:
        print(f"error: --trusted-proxy {exc} is not an IP address or network", file=sys.stderr)
        return 2
    secure = bool(args.tls_cert or args.behind_tls_proxy)
    try:
        app = create_secretariat_app(hub, secure=secure, trusted_proxies=proxies)
    except AccountError as exc:  # the accounts' key file refused, or missing: one line
        print(f"error: {i18n.translate(exc.code, exc.params, 'en')}", file=sys.stderr)
        return 2
    scheme = "https" if args.tls_cert else "http"
    print(f"secretariat console of {hub.root} at {scheme}://{args.host}:{args.port}/", flush=True)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", server_header=False,
        ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, proxy_headers=False,
    )  # fmt: skip
    return 0


def _accounts(args: argparse.Namespace) -> Accounts:
    from services.console.secretariat.app import secretariat_accounts

    return secretariat_accounts(_hub(args))


def _account_parsers(cmds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``account add|list|disable|reset-password``: the officer commands, on the secretariat's
    accounts in the hub home."""
    account = cmds.add_parser("account", help="the secretariat console's accounts (with TOTP)")
    sub = account.add_subparsers(dest="account_command", required=True)

    def command(name: str, text: str, func: object) -> argparse.ArgumentParser:
        c: argparse.ArgumentParser = sub.add_parser(name, help=text)
        c.add_argument("--lang", choices=("es", "en", "fr", "pt"), help="language of messages")
        c.set_defaults(secretariat_func=officer_cmd.run, officer_func=func,
                       open_accounts=_accounts)  # fmt: skip
        return c

    add = command("add", "add an operator", officer_cmd.cmd_add)
    add.add_argument("--login", required=True, help="3 to 32 of a-z, 0-9, '.', '-', '_'")
    add.add_argument("--name", required=True)
    add.add_argument("--position", required=True)
    add.add_argument("--agency", default="Technical Secretariat (OAS)")
    add.add_argument("--language", default="es", help="es, en, fr, pt")
    roles = "officer (looks), supervisor (approves, declines, revokes), admin"
    add.add_argument("--role", default="officer", help=roles)
    add.add_argument("--password-env", help="read the password from this variable")
    lst = command("list", "list the operators", officer_cmd.cmd_list)
    lst.add_argument("--json", action="store_true")
    command("disable", "disable an operator and end their sessions",
            officer_cmd.cmd_disable).add_argument("login")  # fmt: skip
    rst = command("reset-password", "set a new password; the second factor is enrolled again",
                  officer_cmd.cmd_reset_password)  # fmt: skip
    rst.add_argument("login")
    rst.add_argument("--password-env", help="read the password from this variable")


def run(args: argparse.Namespace) -> int:
    """The command, with a refusal said in one line (exit status 2)."""
    try:
        return int(args.secretariat_func(args))
    except SecretariatError as exc:
        print(f"error: {says(exc)}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("secretariat", help="the secretariat's desk: review, network, audit, study")
    p.add_argument(
        "--hub-home", default=os.environ.get("CIFTA_HUB_HOME", "var/hub"), help="hub home"
    )
    p.set_defaults(func=run)
    cmds = p.add_subparsers(dest="secretariat_command", required=True)
    c = cmds.add_parser("requests", help="requests waiting for review (never their key ids)")
    c.set_defaults(secretariat_func=cmd_requests)
    c = cmds.add_parser("file-request", help="put a state's signed request into the review queue")
    c.add_argument("request", help="the signed request file the state sent")
    c.set_defaults(secretariat_func=cmd_file)
    c = cmds.add_parser("approve", help="approve a request (a registration needs --confirm)")
    c.add_argument("request_id")
    c.add_argument("--confirm", help="the signing key id the state read out by telephone")
    c.set_defaults(secretariat_func=cmd_approve)
    c = cmds.add_parser("decline", help="take a request out of the queue, signing nothing")
    c.add_argument("request_id")
    c.set_defaults(secretariat_func=cmd_decline)
    c = cmds.add_parser("network", help="each state: connected, backlog, storage")
    c.add_argument("--json", action="store_true")
    c.set_defaults(secretariat_func=cmd_network)
    c = cmds.add_parser("audit", help="log size, witnesses behind; --verify the whole log")
    c.add_argument("--verify", action="store_true")
    c.set_defaults(secretariat_func=cmd_audit)
    c = cmds.add_parser("console", help="serve the secretariat's web console")
    c.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    c.add_argument("--port", type=int, default=8090)
    add_serving_options(c, str)
    c.set_defaults(secretariat_func=cmd_console)
    _account_parsers(cmds)
    c = cmds.add_parser("statistics", help="the study's aggregates (audit metadata only)")
    c.add_argument("--csv", choices=("messages", "tracing"), help="write this table as CSV")
    c.set_defaults(secretariat_func=cmd_statistics)
