"""What a person sees of their mistakes in a trace or a message, the CLI run as a separate
process: a template sent unedited, an expiry already past, a date that is no date, a state asked
that is not on the network or is this node, a forward previewed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli_officers import KIND, body_file, cifta, home, one_line_error

__all__ = ["home"]  # the fixture, shared with the officers' CLI tests

DATETIME = "a date YYYY-MM-DD or an RFC 3339 time such as 2026-12-01T09:30:00Z"


def test_a_tracing_template_previewed_unedited_names_what_to_fill_in(home: str) -> None:
    template = cifta("template", "tracing.request")
    assert template.returncode == 0, template.stderr
    assert '"priority"' not in template.stdout and '"due_at"' not in template.stdout
    line = one_line_error(cifta("trace", "new", "--home", home, "--body", "-", "--to", "USA",
                                "--dry-run", stdin=template.stdout))  # fmt: skip
    assert line.startswith("error: the tracing.request body still has template placeholders")


def test_a_priority_the_schema_does_not_know_is_named(home: str, tmp_path: Path) -> None:
    request = body_file(tmp_path, "tracing.request", priority="asap")
    line = one_line_error(cifta("trace", "new", "--home", home, "--body", request, "--to", "USA"))
    assert line.startswith("error: ") and "priority" in line


def test_an_expiry_already_past_is_refused_before_anything_is_queued(
    home: str, tmp_path: Path
) -> None:
    line = one_line_error(cifta("send", "--home", home, "--kind", KIND, "--to", "USA",
                                "--handling", "H1", "--body", body_file(tmp_path),
                                "--expires", "2020-01-01"))  # fmt: skip
    assert line == (
        "error: --expires '2020-01-01T00:00:00+00:00': expected a time after now (the message "
        "would arrive expired)"
    )
    assert cifta("inbox", "--home", home, "--sent", "--json").stdout.strip() == "[]"


def test_a_date_that_is_no_date_names_what_was_typed_and_the_format(
    home: str, tmp_path: Path
) -> None:
    line = one_line_error(cifta("send", "--home", home, "--kind", KIND, "--to", "USA",
                                "--handling", "H1", "--body", body_file(tmp_path),
                                "--expires", "2026-13-01"))  # fmt: skip
    assert line == f"error: --expires '2026-13-01': expected {DATETIME}"


def test_a_state_asked_is_named_as_unknown_or_as_this_node(home: str, tmp_path: Path) -> None:
    request = body_file(tmp_path, "tracing.request")
    line = one_line_error(cifta("trace", "new", "--home", home, "--body", request, "--to", "XXX"))
    assert line == "error: XXX is not on the network (not in the directory)"
    line = one_line_error(cifta("trace", "new", "--home", home, "--body", request, "--to", "MEX"))
    assert line == "error: MEX is this node: a node does not send to itself"


def test_a_trace_previewed_names_the_officer_acting(home: str, tmp_path: Path) -> None:
    request = body_file(tmp_path, "tracing.request")
    assert json.loads(Path(request).read_text())["requesting_officer"]["name"] != "Ana Ruiz"
    done = cifta("trace", "new", "--home", home, "--body", request, "--to", "USA", "--dry-run",
                 "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    named = json.loads(done.stdout)["preview"]["body"]["requesting_officer"]
    assert (named["name"], named["position"], named["agency"]) == ("Ana Ruiz", "Analyst", "FGR")
