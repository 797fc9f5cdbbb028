"""What the officer's commands share: the node they work on, the officer acting, JSON bodies
from files, and printing a result (a table or a line for people, JSON with ``--json``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.cli import messages
from services.cli.messages import t as _
from services.cli.tables import dumps
from services.i18n import LANGUAGES
from services.node.application import Application, ApplicationError, OfficerIdentity, open_node
from services.node.application.models import Handling, Queued

#: The environment variable that names the officer, as --officer does.
OFFICER_ENV = "CIFTA_OFFICER"


def add_lang(p: argparse.ArgumentParser) -> None:
    """``--lang``: the language of the messages, of the help and of the mistakes (es, en, fr, pt).

    :func:`services.cli.main.main` reads it from the command line before parsing (``--help`` is
    printed while parsing); it is declared so that ``--help`` lists it and a wrong one is refused.
    """
    p.add_argument("--lang", choices=LANGUAGES, default=argparse.SUPPRESS,
                   help=_("language of the messages"))  # fmt: skip


def add_common(p: argparse.ArgumentParser, *, officer: bool = True) -> None:
    """--home, --json, --lang and (for recorded actions) --officer."""
    p.add_argument(
        "--home",
        default=os.environ.get("CIFTA_NODE_HOME"),
        help=_("the node's home (or CIFTA_NODE_HOME)"),
    )
    p.add_argument("--json", action="store_true", help=_("print JSON (errors too)"))
    add_lang(p)
    if officer:
        who = _('who acts: "Name|Position|Agency" (or {variable})').format(variable=OFFICER_ENV)
        p.add_argument("--officer", help=who)


def add_handling(p: argparse.ArgumentParser, default: str | None) -> None:
    """--handling, --note, --confidential and --dry-run, for commands that queue a message."""
    text = _("H0-H3 (default {handling})").format(handling=default) if default else "H0-H3"
    p.add_argument("--handling", choices=["H0", "H1", "H2", "H3"], help=text)
    p.add_argument("--note", help=_("the restriction, for handling code H3"))
    p.add_argument(
        "--confidential",
        action="store_true",
        default=None,
        help=_("ask for Article XII confidentiality"),
    )
    add_dry_run(p)


def add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help=_("show what would be sealed and to whom; queue nothing"),
    )


def handling(args: argparse.Namespace) -> dict[str, Any]:
    """The command fields of the handling options given."""
    return Handling(
        handling=args.handling, note=args.note, confidential=args.confidential
    ).model_dump()


def node(args: argparse.Namespace) -> Application:
    return open_node(args.home)


def officer(args: argparse.Namespace) -> OfficerIdentity:
    """The officer acting, from --officer or CIFTA_OFFICER: "Name|Position|Agency". Required:
    every action is recorded under the officer's name (no login name stands in)."""
    given = getattr(args, "officer", None) or os.environ.get(OFFICER_ENV)
    if not given or not given.strip():
        raise ApplicationError("officer.missing")
    parts = [p.strip() for p in given.split("|")]
    if len(parts) != 3 or not all(parts) or any(len(p) > 64 for p in parts):
        raise ApplicationError(
            "officer.incomplete", field="officer", value=given, expected="officer"
        )
    return OfficerIdentity(name=parts[0], position=parts[1], agency=parts[2])


def states(text: str | None) -> list[str]:
    return [p.strip().upper() for p in (text or "").split(",") if p.strip()]


def read_json(source: str, field: str = "body") -> Any:
    """JSON from a file, or standard input for ``-``."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise ApplicationError("io.failed", path=source, problem=exc.strerror or "") from None
    try:
        return json.loads(data)
    except ValueError:
        raise ApplicationError("body.not_json", field=field) from None


def read_body(source: str) -> dict[str, Any]:
    payload = read_json(source)
    if not isinstance(payload, dict):
        raise ApplicationError("body.not_json")
    return payload


def pairs(values: Sequence[str] | None, field: str, fmt: str) -> dict[int, str]:
    """``--line 1=40``: values by line number."""
    out: dict[int, str] = {}
    for v in values or []:
        line, sep, value = v.partition("=")
        if not sep or not line.strip().isdigit() or not value.strip():
            raise ApplicationError("value.invalid", field=field, value=v, expected=fmt)
        out[int(line)] = value.strip()
    return out


def quantities(values: Sequence[str] | None, field: str = "lines") -> dict[int, int]:
    out = {}
    for line, q in pairs(values, field, "line_quantity").items():
        if not q.isdigit():
            raise ApplicationError(
                "value.invalid", field=field, value=f"{line}={q}", expected="line_quantity"
            )
        out[line] = int(q)
    return out


def print_json(data: Any) -> None:
    print(dumps(data))


def print_queued(args: argparse.Namespace, q: Queued) -> int:
    """What was queued (or, for a dry run, what would be), and the notices that go with it."""
    if args.json:
        print_json(q.model_dump(mode="json"))
        return 0
    notes = [messages.text(n.code, **_joined(n.params)) for n in q.notices]
    if q.preview is None:
        line = messages.text(
            "queued", kind=q.kind, msg_id=q.msg_id, recipients=", ".join(q.recipients)
        )
        print(line + "".join(f"; {n}" for n in notes))
        return 0
    p = q.preview
    print(
        messages.text(
            "preview",
            title=messages.title(p.kind),
            sender=p.sender,
            recipients=", ".join(p.recipients),
        )
    )
    parts = [messages.text(f"handling.{p.handling.value}", note=p.handling_note or "")]
    if p.confidential:
        parts.append(messages.text("confidential"))
    if p.case_id:
        parts.append(messages.text("view.case", case_id=p.case_id))
    if p.in_reply_to:
        parts.append(messages.text("view.in_reply_to", in_reply_to=p.in_reply_to))
    print("\n".join(f"  {part}" for part in parts))
    for n in notes:
        print(f"  {n}")
    if p.body:  # a forward's preview shows no content (opening it is recorded: `show`)
        print(dumps(p.body))
    return 0


def _joined(params: dict[str, Any]) -> dict[str, Any]:
    """Notice parameters as a person reads them: lists joined, times to the minute (UTC), code
    values (a priority) named."""
    out = {}
    for k, v in params.items():
        if isinstance(v, list):
            v = ", ".join(map(str, v))
        elif k.endswith("_at") and isinstance(v, str):
            v = datetime.fromisoformat(v).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        elif k == "priority" and isinstance(v, str):
            v = messages.value(v)
        out[k] = v
    return out
