"""``cifta lookup`` and ``cifta records ...``: blind record lookup from the officer's terminal.

``cifta records import/list/remove/publish/stats`` keep the state's own register and its
published filter; ``cifta lookup`` asks every state at once whether it holds a record of a
firearm and, with ``--trace FILE``, writes the tracing request to send to the states that do.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from nats.errors import Error as NatsError

from schemas.registry import example_body
from services.cli.messages import t as _
from services.cli.node_access import OFFICER_ENV, add_lang, officer
from services.cli.node_cmd import CliError, _passphrase, _settings
from services.cli.tables import dumps, table
from services.core.keys import KeyFileError, NodeKeys
from services.core.lookup_filter import FilterError
from services.core.normalise import Firearm, MarkError, firearm
from services.core.oprf import LookupKeys
from services.node.lookup_client import Outcome, hits, lookup_from_home, republish
from services.node.records import REGISTER_FILE, Category, DuplicateRecord, Register
from services.node.settings import NodeSettings

CSV_COLUMNS = ("make", "model", "calibre", "serial", "category")
_EXPECTED = {
    "make": "the manufacturer's name as marked (Art. VI.1.a)",
    "model": "the model, or empty",
    "calibre": "the calibre, or empty",
    "serial": "the serial number as marked",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _keys(settings: NodeSettings) -> NodeKeys:
    """The node's keys, with a lookup key added (and saved) if its key file predates lookups."""
    passphrase = _passphrase(settings)
    try:
        keys = NodeKeys.load(settings.keys_path, passphrase)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    if keys.lookup is None:
        keys = replace(keys, lookup=LookupKeys.generate())
        keys.save(settings.keys_path, passphrase)
        print("added a lookup key to the node's key file")
    return keys


def _officer(args: argparse.Namespace) -> str:
    """The officer acting, as the register records each action: the structured identity
    (--officer "Name|Position|Agency" or CIFTA_OFFICER), required, no login name standing in."""
    return officer(args).recorded


def _register(settings: NodeSettings, keys: NodeKeys) -> Register:
    return Register(settings.home / REGISTER_FILE, keys.lookup)


def _mark_problem(exc: MarkError, typed: dict[str, str]) -> str:
    """One line: the mark, what was typed, what is wrong, what is expected."""
    return f"{exc.field} {typed[exc.field]!r}: {exc.problem}; expected {_EXPECTED[exc.field]}"


def _marks(typed: dict[str, str]) -> Firearm:
    try:
        return firearm(typed["make"], typed["model"], typed["calibre"], typed["serial"])
    except MarkError as exc:
        raise CliError(_mark_problem(exc, typed)) from None


def _read_csv(path: Path) -> list[tuple[Firearm, Category, str]]:
    """Every row of an import file, or a :class:`CliError` naming each bad row (nothing is
    imported unless every row is good)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CliError(f"{path}: cannot read it as UTF-8 CSV ({type(exc).__name__})") from None
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise CliError(
            f"{path}: missing column(s) {', '.join(missing)}; expected a header line "
            f"{','.join(CSV_COLUMNS)}[,reference]"
        )
    entries, problems = [], []
    categories = ", ".join(c.value for c in Category)
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            category = Category((row["category"] or "").strip().lower())
        except ValueError:
            problems.append(f"line {number}, category {row['category']!r}: expected {categories}")
            continue
        typed = {m: row[m] or "" for m in ("make", "model", "calibre", "serial")}
        try:
            marks = firearm(typed["make"], typed["model"], typed["calibre"], typed["serial"])
        except MarkError as exc:
            problems.append(f"line {number}, {_mark_problem(exc, typed)}")
            continue
        entries.append((marks, category, (row.get("reference") or "").strip()[:200]))
    if problems:
        raise CliError(f"{path}: nothing imported\n  " + "\n  ".join(problems))
    return entries


def _publish(settings: NodeSettings, keys: NodeKeys, register: Register) -> str:
    try:
        count = asyncio.run(republish(settings, keys, register, _now()))[0]
    except (OSError, NatsError, TimeoutError) as exc:
        return (
            f"filter not published: the hub is unreachable ({type(exc).__name__});"
            " run `cifta records publish` later"
        )
    except FilterError as exc:
        raise CliError(str(exc)) from None
    return f"filter of {count} record(s) published"


def cmd_records_import(args: argparse.Namespace) -> int:
    who = _officer(args)
    settings = _settings(args)
    entries = _read_csv(Path(args.file))
    keys = _keys(settings)
    register = _register(settings, keys)
    try:
        ids = register.add(entries, who, _now())
    except DuplicateRecord as exc:
        raise CliError(f"nothing imported: the register already holds {exc}") from None
    print(f"imported {len(ids)} record(s)")
    if not args.no_publish:
        print(_publish(settings, keys, register))
    return 0


def cmd_records_list(args: argparse.Namespace) -> int:
    who = _officer(args)
    settings = _settings(args)
    register = _register(settings, _keys(settings))
    records = register.records(who, _now())
    if args.json:
        print(dumps([asdict(r) for r in records]))
        return 0
    rows = [(r.record_id, r.category.value, r.firearm.make, r.firearm.model, r.firearm.calibre,
             r.firearm.serial, r.reference) for r in records]  # fmt: skip
    print(table(("record", "category", "make", "model", "calibre", "serial", "reference"), rows))
    return 0


def cmd_records_remove(args: argparse.Namespace) -> int:
    who = _officer(args)
    settings = _settings(args)
    keys = _keys(settings)
    register = _register(settings, keys)
    removed = register.remove(args.record_ids, who, _now())
    if removed != len(args.record_ids):
        print(f"{len(args.record_ids) - removed} of the record ids named no record")
    print(f"removed {removed} record(s)")
    if removed and not args.no_publish:
        print(_publish(settings, keys, register))
    return 0 if removed == len(args.record_ids) else 1


def cmd_records_publish(args: argparse.Namespace) -> int:
    settings = _settings(args)
    keys = _keys(settings)
    message = _publish(settings, keys, _register(settings, keys))
    print(message)
    return 0 if message.startswith("filter of") else 1


def cmd_records_rotate_key(args: argparse.Namespace) -> int:
    """A new OPRF key: saved in the key file (a running node takes it up within a second), then
    the filter rebuilt under it and published. Lookups in between fail their proof check."""
    settings = _settings(args)
    keys = _keys(settings)
    assert keys.lookup is not None
    keys = replace(keys, lookup=keys.lookup.with_new_oprf_key())
    keys.save(settings.keys_path, _passphrase(settings))
    assert keys.lookup is not None
    print(f"new OPRF key {keys.lookup.public().kid}")
    message = _publish(settings, keys, _register(settings, keys))
    print(message)
    return 0 if message.startswith("filter of") else 1


def cmd_records_stats(args: argparse.Namespace) -> int:
    settings = _settings(args)
    stats = Register(settings.home / REGISTER_FILE, None).statistics()
    if args.json:
        print(dumps(asdict(stats)))
        return 0
    print(f"records flagged: {stats.records}")
    print(f"lookups made: {stats.lookups_made}, with a hit: {stats.lookups_with_hits}")
    askers = sorted(set(stats.evaluated_by_asker) | set(stats.refused_by_asker))
    rows = [
        (a, stats.evaluated_by_asker.get(a, 0), stats.refused_by_asker.get(a, 0)) for a in askers
    ]
    print(table(("asked by", "evaluated", "refused"), rows))
    return 0


def _trace_template(raw: dict[str, str], path: Path) -> None:
    """A tracing request (Art. XIII.3) with the firearm as the officer typed it."""
    body = json.loads(example_body("tracing.request").model_dump_json())
    body["firearm"]["model"] = raw["model"] or body["firearm"]["model"]
    body["firearm"]["calibre"] = raw["calibre"] or body["firearm"]["calibre"]
    body["firearm"]["markings"]["manufacturer"] = raw["make"]
    body["firearm"]["markings"]["serial_number"] = raw["serial"]
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    os.chmod(path, 0o600)  # it names the firearm: the officer's alone


def cmd_lookup(args: argparse.Namespace) -> int:
    who = _officer(args)
    settings = _settings(args)
    typed = {"make": args.make, "model": args.model, "calibre": args.calibre,
             "serial": args.serial}  # fmt: skip
    marks = _marks(typed)
    register = Register(settings.home / REGISTER_FILE, None)
    try:
        answers = asyncio.run(lookup_from_home(settings, register, marks, who, _now()))
    except (OSError, NatsError, TimeoutError) as exc:
        raise CliError(f"the hub is unreachable ({type(exc).__name__}); try again") from None
    found = hits(answers)
    if args.json:
        print(dumps({"hits": found, "answers": [asdict(a) for a in answers]}))
    else:
        rows = [
            (a.party, a.outcome.value, a.detail) for a in sorted(answers, key=lambda a: a.party)
        ]
        print(table((_("state"), _("answer"), _("detail")), rows))  # the answers stay codes
        holders = ", ".join(found) if found else _("no state")
        print("\n" + _("holds a record: {states}").format(states=holders))
    if found and args.trace:
        _trace_template(typed, Path(args.trace))
        print(_(
            "tracing request written to {path}: complete the type, country of manufacture, "
            "seizure, officer and case reference, then send it with"
        ).format(path=args.trace))  # fmt: skip
        print(f"  cifta trace new --body {args.trace} --to {','.join(found)}")
    elif found:
        print(_("to ask them for tracing (Art. XIII.3), run again with --trace request.json"))
    unanswered = [a.party for a in answers if a.outcome in (Outcome.UNREACHABLE, Outcome.REFUSED)]
    return 3 if unanswered and not found else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    home = os.environ.get("CIFTA_NODE_HOME")

    def command(group: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        p: argparse.ArgumentParser = group.add_parser(name, help=text, description=text)
        p.add_argument("--home", default=home, help=_("the node's home (or CIFTA_NODE_HOME)"))
        who = _('who acts: "Name|Position|Agency" (or {variable})').format(variable=OFFICER_ENV)
        p.add_argument("--officer", help=who)
        add_lang(p)
        return p

    p = command(sub, "lookup", _("ask every state at once whether it holds a record of a firearm"))
    p.add_argument("--make", required=True, help=_("manufacturer, as marked"))
    p.add_argument("--model", default="", help=_("model (shown, not matched)"))
    p.add_argument("--calibre", default="", help=_("calibre (shown, not matched)"))
    p.add_argument("--serial", required=True, help=_("serial number, as marked"))
    p.add_argument("--trace", metavar="FILE", help=_("write the tracing request for the hits here"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lookup)

    records = sub.add_parser("records", help="the state's records register for blind lookup")
    group = records.add_subparsers(dest="records_command", required=True)
    p = command(group, "import", "import records from CSV (make,model,calibre,serial,category)")
    p.add_argument("file")
    p.add_argument("--no-publish", action="store_true", help="do not publish the filter now")
    p.set_defaults(func=cmd_records_import)
    p = command(group, "list", "list the register's records (the reading is logged)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_records_list)
    p = command(group, "remove", "remove records by id")
    p.add_argument("record_ids", nargs="+")
    p.add_argument("--no-publish", action="store_true")
    p.set_defaults(func=cmd_records_remove)
    p = command(group, "publish", "rebuild the filter from the register and publish it")
    p.set_defaults(func=cmd_records_publish)
    p = command(group, "rotate-key", "replace the OPRF key and publish the filter under it")
    p.set_defaults(func=cmd_records_rotate_key)
    p = command(group, "stats", "lookup counts: by asking state, and this node's own")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_records_stats)
