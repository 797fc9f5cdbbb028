"""A person's mistakes on the command line, as they see them (``cifta`` run as a process): one
line naming the option as typed and what it expects, JSON under ``--json``, exit code 2; the
record lookup and the register refuse to act without the officer's structured identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OFFICER = "Ana Ruiz|Analyst|FGR"


def cifta(*argv: str, officer: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CIFTA_OFFICER"}
    if officer is not None:
        env["CIFTA_OFFICER"] = officer
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *argv],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_a_missing_option_is_one_line_naming_it_and_what_it_expects() -> None:
    run = cifta("lookup", "--make", "Glock", officer=OFFICER)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "error: cifta lookup: --serial is required: expected serial number, as marked"
    ]


def test_a_value_argparse_refuses_names_the_option_and_the_expected_format() -> None:
    choice = cifta("audit", "serve")
    assert choice.returncode == 2
    assert choice.stderr.splitlines() == [
        "error: cifta audit: 'serve' is not a command: expected one of run, verify, alarms, "
        "trail, report"
    ]
    number = cifta("audit", "run", "--fetch-batch", "many")
    assert number.returncode == 2
    assert number.stderr.splitlines() == [
        "error: cifta audit run: --fetch-batch 'many' is not accepted: expected a whole number"
    ]
    unknown = cifta("lookup", "--make", "G", "--serial", "1", "--colour", "red")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == [
        "error: cifta: --colour red is not an option of this command: see `cifta --help`"
    ]


def test_under_json_a_usage_mistake_is_json_with_its_code() -> None:
    run = cifta("trace", "new", "--priority", "soon", "--json", officer=OFFICER)
    assert run.returncode == 2 and run.stdout == ""
    error = json.loads(run.stderr)["error"]
    assert error["code"] == "usage"
    assert error["params"] == {
        "problem": "not_a_choice", "option": "--priority", "value": "soon",
        "choices": ["routine", "urgent"],
    }  # fmt: skip
    assert error["message"] == (
        "cifta trace new: --priority 'soon' is not accepted: expected one of routine, urgent"
    )


def test_under_json_expected_stays_english_and_only_the_message_is_translated() -> None:
    """A program reads ``code`` and ``params`` whatever the officer's language; the person reads
    ``message``."""
    cases = [
        (("lookup", "--make", "Glock"), "serial number, as marked",
         "cifta lookup: --serial es obligatorio: se esperaba número de serie"),
        (("audit", "run", "--fetch-batch", "many"), "a whole number",
         "cifta audit run: --fetch-batch 'many' no se acepta: se esperaba un número entero"),
        (("audit",), "one of run, verify, alarms, trail, report",
         "cifta audit: falta un comando: se esperaba uno de run, verify"),
    ]  # fmt: skip
    for argv, expected, message in cases:
        run = cifta("--lang", "es", *argv, "--json", officer=OFFICER)
        assert run.returncode == 2 and run.stdout == "", argv
        error = json.loads(run.stderr)["error"]
        assert error["code"] == "usage"
        assert error["params"]["expected"] == expected
        assert error["message"].startswith(message), error["message"]


def test_a_lookup_needs_the_officers_structured_identity_no_login_stands_in(
    tmp_path: Path,
) -> None:
    home = str(tmp_path / "MEX")
    missing = cifta("lookup", "--home", home, "--make", "Glock", "--serial", "BXKM417")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith('error: --officer is required: "Name|Position|Agency"')
    assert len(missing.stderr.splitlines()) == 1
    free_text = cifta(
        "lookup", "--home", home, "--make", "Glock", "--serial", "1", "--officer", "root"
    )
    assert free_text.returncode == 2
    assert free_text.stderr.strip() == (
        'error: --officer \'root\': expected "Name|Position|Agency", e.g. "Ana Ruiz|Analyst|FGR"'
    )
    as_json = cifta("records", "list", "--home", home, "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stderr)["error"]["code"] == "officer.missing"
    assert not (tmp_path / "MEX").exists()  # refused before the register was opened
