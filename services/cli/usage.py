"""argparse's own mistakes (a missing option, a value out of its choices, an unknown option) as
one line naming the option as typed and what it expects, and as JSON under ``--json``, instead
of argparse's usage block and library wording. The exit code stays argparse's 2.

argparse reports a mistake only as an English sentence (``ArgumentParser.error``); its wording
is stable since Python 3.9 and is read back here into a code and parameters, the command's own
``help`` texts supplying what each option expects.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, NoReturn

#: Exit code of a usage mistake, as argparse (and shells) use it.
USAGE_EXIT = 2

_REQUIRED = re.compile(r"the following arguments are required: (?P<names>.+)")
_CHOICE = re.compile(
    r"argument (?P<name>\S+): invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)"
)
_VALUE = re.compile(r"argument (?P<name>\S+): invalid (?P<type>\w+) value: (?P<value>.+)")
_ONE = re.compile(r"argument (?P<name>\S+): expected (?P<count>.+) arguments?")
_UNKNOWN = re.compile(r"unrecognized arguments: (?P<names>.+)")
_EXCLUSIVE = re.compile(r"argument (?P<name>\S+): not allowed with argument (?P<other>\S+)")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are one line (or JSON), see the module's text. Its
    subcommands' parsers are of this class too (argparse makes them of the parent's class)."""

    #: Whether the command line asked for JSON; set by :func:`services.cli.main.main`.
    json_errors = False

    def error(self, message: str) -> NoReturn:
        params = describe(self, message)
        line = render(self.prog, params)
        if Parser.json_errors:
            error = {"code": "usage", "params": params, "message": line}
            print(json.dumps({"error": error}, ensure_ascii=False), file=sys.stderr)
        else:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(USAGE_EXIT)


def describe(parser: argparse.ArgumentParser, message: str) -> dict[str, Any]:
    """argparse's sentence as a problem code and its parameters (``option`` as typed)."""
    if m := _REQUIRED.fullmatch(message):
        names = [n.strip() for n in m["names"].split(",")]
        return {"problem": "required", "option": names[0], "options": names,
                "expected": _expects(parser, names[0])}  # fmt: skip
    if m := _CHOICE.fullmatch(message):
        choices = [c.strip().strip("'") for c in m["choices"].split(",")]
        return {"problem": "not_a_choice", "option": m["name"], "value": m["value"].strip("'"),
                "choices": choices}  # fmt: skip
    if m := _VALUE.fullmatch(message):
        return {"problem": "invalid_value", "option": m["name"], "value": m["value"].strip("'"),
                "expected": _TYPES.get(m["type"], m["type"])}  # fmt: skip
    if m := _ONE.fullmatch(message):
        return {"problem": "value_missing", "option": m["name"],
                "expected": _expects(parser, m["name"].split("/")[0])}  # fmt: skip
    if m := _UNKNOWN.fullmatch(message):
        return {"problem": "unknown", "option": m["names"].split()[0], "value": m["names"]}
    if m := _EXCLUSIVE.fullmatch(message):
        return {"problem": "exclusive", "option": m["name"], "other": m["other"]}
    return {"problem": "other", "detail": message}


_TYPES = {"int": "a whole number", "float": "a number"}


def _expects(parser: argparse.ArgumentParser, name: str) -> str:
    """What an option or argument is for, from its help text (or its name)."""
    for action in parser._actions:  # argparse keeps no public list of a parser's actions
        if name in action.option_strings or name in (action.dest, action.metavar):
            if action.choices is not None and not isinstance(action.choices, dict):
                return "one of " + ", ".join(str(c) for c in action.choices)
            if isinstance(action.choices, dict):  # a subcommand
                return "one of " + ", ".join(action.choices)
            if action.help and action.help != argparse.SUPPRESS:
                return str(action.help).split(" (")[0]
    return "a value"


def render(prog: str, p: dict[str, Any]) -> str:
    """The English line of a usage mistake, naming the command and the option as typed."""
    option, problem = p.get("option", ""), p["problem"]
    if problem == "required":
        more = p["options"][1:]
        also = f" (and {', '.join(more)})" if more else ""
        what = option if option.startswith("-") else option.upper()  # as --help shows it
        if what.endswith("COMMAND"):
            what = "a command"
        return f"{prog}: {what} is required{also}: expected {p['expected']}"
    if problem == "not_a_choice":
        choices = ", ".join(p["choices"])
        if not option.startswith("-") and option.endswith("command"):
            return f"{prog}: {p['value']!r} is not a command: expected one of {choices}"
        what = option if option.startswith("-") else option.upper()
        return f"{prog}: {what} {p['value']!r} is not accepted: expected one of {choices}"
    if problem == "invalid_value":
        return f"{prog}: {option} {p['value']!r} is not accepted: expected {p['expected']}"
    if problem == "value_missing":
        return f"{prog}: {option} needs a value: expected {p['expected']}"
    if problem == "unknown":
        return f"{prog}: {p['value']} is not an option of this command: see `{prog} --help`"
    if problem == "exclusive":
        return f"{prog}: {option} cannot be used with {p['other']}"
    return f"{prog}: {p['detail']}: see `{prog} --help`"
