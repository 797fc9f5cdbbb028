"""What an officer sees of the CLI, run as a separate process the way a person runs it: the
officer's identity required, one-line errors naming the option as typed and the format expected,
JSON errors under --json, titles and short ids, previews, templates to fill in, quiet pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.registry import example_body
from tests.support.hub import Hub

OFFICER = "Ana Ruiz|Analyst|FGR"
KIND = "info.trafficking_routes"
#: Library text a person must never see.
LIBRARY_TEXT = ("Traceback", "pydantic", "input_value", "https://errors", "Value error")


@pytest.fixture
def home(hub_home: Hub, tmp_path: Path) -> str:
    """MEX's node home, its hub not running: commands queue, nothing leaves."""
    hub_home.node_settings("MEX", tmp_path).save()
    return str(tmp_path / "MEX")


def cifta(*args: str, officer: str | None = OFFICER, stdin: str | None = None,
          ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CIFTA_OFFICER"}
    if officer is not None:
        env["CIFTA_OFFICER"] = officer
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        input=stdin, capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert not any(t in done.stderr for t in LIBRARY_TEXT), done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


def body_file(tmp_path: Path, kind: str = KIND, **changes: Any) -> str:
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(example_body(kind).model_dump(mode="json") | changes))
    return str(path)


def sent(home: str, tmp_path: Path, *extra: str) -> str:
    done = cifta("send", "--home", home, "--kind", KIND, "--to", "USA", "--handling", "H1",
                 "--body", body_file(tmp_path), "--json", *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["msg_id"])


def test_opening_a_message_without_an_officer_is_refused_and_records_no_login_name(
    home: str, tmp_path: Path
) -> None:
    msg_id = sent(home, tmp_path)
    line = one_line_error(cifta("show", "--home", home, msg_id, officer=None))
    assert line.startswith("error: --officer is required") and "Name|Position|Agency" in line
    line = one_line_error(cifta("show", "--home", home, msg_id, "--officer", "agent.k"))
    assert "--officer 'agent.k': expected \"Name|Position|Agency\"" in line
    done = cifta("show", "--home", home, msg_id[-8:])
    assert done.returncode == 0, done.stderr
    assert "opened by Ana Ruiz (Analyst, FGR) (recorded)" in done.stdout


def test_a_message_is_shown_as_labelled_fields_with_its_codes_explained(
    home: str, tmp_path: Path
) -> None:
    msg_id = sent(home, tmp_path, "--handling", "H3", "--note", "not for court use")
    done = cifta("show", "--home", home, msg_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Trafficking routes ({KIND})  {msg_id}")
    assert "H3: other restrictions, stated in the message: not for court use" in done.stdout
    title = example_body(KIND).model_dump()["title"]
    assert "  title" in done.stdout and title in done.stdout
    assert '"kind"' not in done.stdout  # fields, not raw JSON


def test_the_inbox_lists_titles_and_short_ids(home: str, tmp_path: Path) -> None:
    first, second = sent(home, tmp_path), sent(home, tmp_path)
    done = cifta("inbox", "--home", home, "--sent")
    assert done.returncode == 0
    assert "Trafficking routes" in done.stdout and first[-8:] in done.stdout
    assert first not in done.stdout  # the short id, not the 36 characters
    assert done.stdout.count(second[-8:]) == 1


def test_a_dry_run_prints_what_would_be_sealed_and_queues_nothing(
    home: str, tmp_path: Path
) -> None:
    done = cifta("send", "--home", home, "--kind", KIND, "--to", "USA,COL", "--handling", "H2",
                 "--body", body_file(tmp_path), "--dry-run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "preview (nothing sealed, nothing queued)" in done.stdout and "USA, COL" in done.stdout
    assert cifta("inbox", "--home", home, "--sent", "--json").stdout.strip() == "[]"


def test_a_template_sent_unedited_is_refused_naming_the_fields_to_fill_in(
    home: str, tmp_path: Path
) -> None:
    template = cifta("template", KIND)
    assert template.returncode == 0 and "<fill in" in template.stdout
    line = one_line_error(
        cifta(
            "send",
            "--home",
            home,
            "--kind",
            KIND,
            "--to",
            "USA",
            "--handling",
            "H1",
            "--body",
            "-",
            stdin=template.stdout,
        )
    )
    assert "still has template placeholders to fill in: title" in line


def test_an_urgent_trace_without_justification_names_the_option(home: str, tmp_path: Path) -> None:
    request = body_file(tmp_path, "tracing.request", priority="routine")
    line = one_line_error(cifta("trace", "new", "--home", home, "--body", request, "--to", "USA",
                                "--priority", "urgent"))  # fmt: skip
    assert line == "error: --justification is required when priority=urgent"


def test_h3_without_its_restriction_names_the_note_option(home: str, tmp_path: Path) -> None:
    line = one_line_error(cifta("send", "--home", home, "--kind", KIND, "--to", "USA",
                                "--handling", "H3", "--body", body_file(tmp_path)))  # fmt: skip
    assert line == "error: --note is required when handling=H3"


def test_a_bad_date_names_the_option_as_typed_and_the_expected_format(
    home: str, tmp_path: Path
) -> None:
    line = one_line_error(cifta("send", "--home", home, "--kind", KIND, "--to", "USA",
                                "--handling", "H1", "--body", body_file(tmp_path),
                                "--expires", "12/31/2026"))  # fmt: skip
    assert line == (
        "error: --expires '12/31/2026': expected a date YYYY-MM-DD or an RFC 3339 time such as "
        "2026-12-01T09:30:00Z"
    )


def test_errors_are_json_under_json(home: str, tmp_path: Path) -> None:
    done = cifta("show", "--home", home, "0123456789", "--json")
    assert done.returncode == 2 and done.stdout == ""
    error = json.loads(done.stderr)["error"]
    assert error["code"] == "message.not_found" and error["params"] == {"msg_id": "0123456789"}
    assert error["message"] == "no message 0123456789"


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    """`cifta template --list | head -1` once head has gone: no BrokenPipe traceback or error."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "template", "--list"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, check=False, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""
