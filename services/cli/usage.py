"""argparse's own mistakes (a missing option, a value out of its choices, an unknown option) as
one line naming the option as typed and what it expects, and as JSON under ``--json``, instead
of argparse's usage block and library wording. The exit code stays argparse's 2.

argparse reports a mistake only as an English sentence (``ArgumentParser.error``); its wording
is stable since Python 3.9 and is read back here into a code and parameters, the command's own
``help`` texts supplying what each option expects. The line is in the command's language
(:func:`services.cli.messages.use`); the JSON's parameters stay codes, words as typed, and
``expected`` in English whatever the language (a program reads them; a person reads ``message``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, NoReturn

from services import i18n
from services.cli.messages import language, t
from services.i18n import N_

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


class _Formatter(argparse.HelpFormatter):
    """argparse's help with its own words (``usage:``) in the command's language."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, t(N_("usage: ")) if prefix is None else prefix)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are one line (or JSON), see the module's text, and whose
    help is all in the command's language. Its subcommands' parsers are of this class too
    (argparse makes them of the parent's class)."""

    #: Whether the command line asked for JSON; set by :func:`services.cli.main.main`.
    json_errors = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        # argparse's own words, which it takes from Python's catalogs (English here)
        self._positionals.title = t(N_("positional arguments"))
        self._optionals.title = t(N_("options"))
        for action in self._actions:
            if isinstance(action, argparse._HelpAction):
                action.help = t(N_("show this help message and exit"))

    def error(self, message: str) -> NoReturn:
        params, expected = describe(self, message)
        line = render(self.prog, params, expected)
        if Parser.json_errors:
            error = {"code": "usage", "params": params, "message": line}
            print(json.dumps({"error": error}, ensure_ascii=False), file=sys.stderr)
        else:
            print(t(N_("error: %(reason)s")) % {"reason": line}, file=sys.stderr)
        sys.exit(USAGE_EXIT)


def describe(parser: argparse.ArgumentParser, message: str) -> tuple[dict[str, Any], str]:
    """argparse's sentence as a problem code and its parameters (``option`` as typed,
    ``expected`` in English), and what is expected in the command's language (for the line)."""
    if m := _REQUIRED.fullmatch(message):
        names = [n.strip() for n in m["names"].split(",")]
        english, expected = _expects(parser, names[0])
        return {"problem": "required", "option": names[0], "options": names,
                "expected": english}, expected  # fmt: skip
    if m := _CHOICE.fullmatch(message):
        choices = [c.strip().strip("'") for c in m["choices"].split(",")]
        return {"problem": "not_a_choice", "option": m["name"], "value": m["value"].strip("'"),
                "choices": choices}, ""  # fmt: skip
    if m := _VALUE.fullmatch(message):
        english = _TYPES.get(m["type"], m["type"])
        return {"problem": "invalid_value", "option": m["name"], "value": m["value"].strip("'"),
                "expected": english}, t(english) if m["type"] in _TYPES else english  # fmt: skip
    if m := _ONE.fullmatch(message):
        english, expected = _expects(parser, m["name"].split("/")[0])
        return {"problem": "value_missing", "option": m["name"], "expected": english}, expected
    if m := _UNKNOWN.fullmatch(message):
        return {"problem": "unknown", "option": m["names"].split()[0], "value": m["names"]}, ""
    if m := _EXCLUSIVE.fullmatch(message):
        return {"problem": "exclusive", "option": m["name"], "other": m["other"]}, ""
    return {"problem": "other", "detail": message}, ""


_TYPES = {"int": N_("a whole number"), "float": N_("a number")}


def _expects(parser: argparse.ArgumentParser, name: str) -> tuple[str, str]:
    """What an option or argument is for, from its help text (or its name): in English (the
    msgid its help was translated from) and in the command's language."""
    for action in parser._actions:  # argparse keeps no public list of a parser's actions
        if name in action.option_strings or name in (action.dest, action.metavar):
            if action.choices is not None:  # a subcommand's too (a dict of them)
                choices = ", ".join(str(c) for c in action.choices)
                one_of = N_("one of {choices}")
                return one_of.format(choices=choices), t(one_of).format(choices=choices)
            if action.help and action.help != argparse.SUPPRESS:
                english = i18n.msgid_of(language(), str(action.help))
                return english.split(" (")[0], str(action.help).split(" (")[0]
    return N_("a value"), t(N_("a value"))


def render(prog: str, p: dict[str, Any], expected: str | None = None) -> str:
    """The line of a usage mistake in the command's language, naming the command and the option
    as typed; ``expected`` is what is expected in that language (``p``'s English one when not
    given)."""
    option, problem = p.get("option", ""), p["problem"]
    p = {**p, "expected": p.get("expected", "") if expected is None else expected}
    what = option if option.startswith("-") else option.upper()  # as --help shows it
    if problem == "required":
        more = p["options"][1:]
        if what.endswith("COMMAND"):
            line = N_("{prog}: a command is required: expected {expected}")
        elif more:
            line = N_("{prog}: {what} is required (and {more}): expected {expected}")
        else:
            line = N_("{prog}: {what} is required: expected {expected}")
        return t(line).format(prog=prog, what=what, more=", ".join(more), expected=p["expected"])
    if problem == "not_a_choice":
        choices = ", ".join(p["choices"])
        if not option.startswith("-") and option.endswith("command"):
            line = N_("{prog}: {value!r} is not a command: expected one of {choices}")
        else:
            line = N_("{prog}: {what} {value!r} is not accepted: expected one of {choices}")
        return t(line).format(prog=prog, what=what, value=p["value"], choices=choices)
    if problem == "invalid_value":
        line = N_("{prog}: {option} {value!r} is not accepted: expected {expected}")
        return t(line).format(prog=prog, option=option, value=p["value"], expected=p["expected"])
    if problem == "value_missing":
        line = N_("{prog}: {option} needs a value: expected {expected}")
        return t(line).format(prog=prog, option=option, expected=p["expected"])
    if problem == "unknown":
        line = N_("{prog}: {value} is not an option of this command: see `{prog} --help`")
        return t(line).format(prog=prog, value=p["value"])
    if problem == "exclusive":
        line = N_("{prog}: {option} cannot be used with {other}")
        return t(line).format(prog=prog, option=option, other=p["other"])
    line = N_("{prog}: {detail}: see `{prog} --help`")
    return t(line).format(prog=prog, detail=p["detail"])
