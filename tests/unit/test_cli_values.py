"""The officer's commands name code values in the officer's language (priority, status, outcome,
a recipient's delivery state, a controlled delivery's phase and decisions) as the console names
them; ``--json`` keeps the codes; ``--help`` lists the codes an option takes with their names; times
in tables are ISO 8601 in UTC. The application layer is a stub: what is tested is the rendering."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from services.cli import audit_cmd, delivery_cmd, main, messages, messages_cmd, tracing_cmd
from services.cli.node_access import print_queued
from services.node.application.models import (
    FieldView,
    MessageSummary,
    MessageView,
    Notice,
    Queued,
    RecipientStatusView,
)
from services.node.application.procedure_models import OperationView, TimelineEntry, TraceView
from services.node.application.trail import TrailEvent

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
#: The same moment as a body from Bogotá may carry it (UTC-5).
T0_BOGOTA = T0.astimezone(timezone(timedelta(hours=-5)))
SUMMARY = MessageSummary(
    msg_id="01JDXAMPLE0000000000000000", short_id="01JDXAMPLE", direction="out",
    kind="tracing.request", title="Tracing request", sender="MEX", recipients=["USA", "COL"],
    handling="H1", confidential=False, case_id="FGR-2026-114", in_reply_to=None,
    created_at="2026-12-01T09:30:00Z", stored_at="2026-12-01T09:30:00Z", read=True,
)  # fmt: skip


class StubNode:
    """What the commands ask the application layer, answered with fixed views."""

    def traces(self, open_only: bool = False) -> list[TraceView]:
        return [TraceView(
            request_msg_id=SUMMARY.msg_id, short_id=SUMMARY.short_id, requester="MEX",
            requested="USA", priority="urgent", status="answered", overdue=False, filed_at=T0,
            due_at=T0_BOGOTA, acknowledged_at=None, answered_at=T0, outcome="not_found",
            reminders_sent=0, overdue_sent=False,
        )]  # fmt: skip

    def status(self, msg_id: str) -> tuple[MessageSummary, list[RecipientStatusView]]:
        def row(recipient: str, state: str) -> RecipientStatusView:
            return RecipientStatusView(recipient=recipient, state=state, at=None, attempts=1,
                                       reason=None, detail=None, last_error=None)  # fmt: skip

        refused = row("GTM", "rejected").model_copy(update={"reason": "expired"})
        return SUMMARY, [row("USA", "pending"), row("COL", "delivered"), refused]

    def operation(self, operation_id: str, proposer: str | None) -> OperationView:
        entries = [
            TimelineEntry(at=T0, code="interception", params={"party": "GTM",
                                                               "decision": "items_substituted"}),
            TimelineEntry(at=T0_BOGOTA, code="closed", params={"outcome": "interdicted"}),
        ]  # fmt: skip
        return OperationView(
            operation_id="OP-7", proposer="MEX", participants=["MEX", "GTM"], phase="closed",
            custody=None, awaiting=[], route=["GTM", "MEX"], timeline=[], entries=entries,
        )  # fmt: skip

    def operations(self) -> list[OperationView]:
        return [self.operation("OP-7", None)]

    def show(self, msg_id: str, officer: Any) -> MessageView:
        fields = [FieldView(path="priority", value="urgent"),
                  FieldView(path="circumstances", value="seized at the border")]  # fmt: skip
        return MessageView(summary=SUMMARY, handling_note=None, expires_at=None, body={},
                           fields=fields, explanations=[], opened_by="Ana Ruiz")  # fmt: skip


@pytest.fixture(autouse=True)
def stub_node(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for module in (tracing_cmd, delivery_cmd, messages_cmd):
        monkeypatch.setattr(module, "node", lambda args: StubNode())
    yield
    messages.use("en")


def cifta(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main.main([*argv, "--home", "/nowhere"]) == 0
    return capsys.readouterr().out


def test_trace_list_names_priority_status_and_outcome_in_spanish(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, row = cifta(capsys, "trace", "list", "--lang", "es").splitlines()
    assert "urgente" in row and "respondida" in row and "no encontrado" in row, row
    assert "urgent " not in row and "answered" not in row and "not_found" not in row


def test_json_keeps_the_codes(capsys: pytest.CaptureFixture[str]) -> None:
    [trace] = json.loads(cifta(capsys, "trace", "list", "--lang", "es", "--json"))
    assert (trace["priority"], trace["status"], trace["outcome"]) == (
        "urgent", "answered", "not_found"
    )  # fmt: skip
    statuses = json.loads(cifta(capsys, "status", "01JDX", "--lang", "fr", "--json"))
    assert [s["state"] for s in statuses] == ["pending", "delivered", "rejected"]
    assert statuses[2]["reason"] == "expired"


def test_status_names_each_recipients_state_in_french(capsys: pytest.CaptureFixture[str]) -> None:
    lines = cifta(capsys, "status", "01JDX", "--lang", "fr").splitlines()
    assert lines[0] == f"Demande de traçage {SUMMARY.msg_id}"
    assert "en file d'attente, pas encore envoyé" in lines[3] and "remis" in lines[4]
    assert "rejeté" in lines[5] and "expiré à l'arrivée" in lines[5] and "expired" not in lines[5]


def test_a_controlled_delivery_timeline_names_phase_decision_and_outcome_in_portuguese(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = cifta(capsys, "delivery", "timeline", "OP-7", "--lang", "pt")
    assert "encerrada" in out.splitlines()[0] and ": closed" not in out
    assert "itens substituídos" in out and "items_substituted" not in out
    assert "encerrada: interceptado" in out and "interdicted" not in out
    listed = cifta(capsys, "delivery", "list", "--lang", "pt")
    assert "encerrada" in listed and " closed" not in listed


def test_show_names_a_code_value_and_leaves_free_text(capsys: pytest.CaptureFixture[str]) -> None:
    out = cifta(capsys, "show", "01JDX", "--lang", "es", "--officer", "Ana Ruiz|Analista|FGR")
    assert "urgente" in out and "seized at the border" in out


def test_help_lists_the_codes_an_option_takes_with_their_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main.main(["delivery", "intercept", "--help", "--lang", "es"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "{continue_intact,items_removed,items_substituted}" in help_text  # typed as codes
    assert "items_removed (artículos retirados)" in help_text
    with pytest.raises(SystemExit):
        main.main(["trace", "new", "--help", "--lang", "fr"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "routine (ordinaire)" in help_text and "valeurs :" in help_text


def test_times_in_tables_are_iso_and_in_utc_whatever_offset_a_body_gave(
    capsys: pytest.CaptureFixture[str],
) -> None:
    header, _, row = cifta(capsys, "trace", "list", "--lang", "pt").splitlines()
    assert "registrada (UTC)" in header and "prazo (UTC)" in header
    assert row.count("2026-12-01 09:30") == 2 and "04:30" not in row  # due_at came as 04:30-05:00
    timeline = cifta(capsys, "delivery", "timeline", "OP-7").splitlines()
    assert [line.split()[0] for line in timeline[2:]] == ["2026-12-01T09:30:00Z"] * 2


def test_the_notice_of_a_filed_tracing_request_names_its_priority(
    capsys: pytest.CaptureFixture[str],
) -> None:
    messages.use("es")
    due = Notice(code="tracing.due", params={"due_at": T0_BOGOTA.isoformat(), "priority": "urgent"})
    queued = Queued(msg_id=SUMMARY.msg_id, short_id=SUMMARY.short_id, kind="tracing.request",
                    recipients=["USA"], notices=[due])  # fmt: skip
    print_queued(argparse.Namespace(json=False), queued)
    assert capsys.readouterr().out.rstrip().endswith("2026-12-01 09:30 UTC (urgente)")


def test_an_audit_trail_dates_its_events_in_utc_with_a_z_and_keeps_their_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trail's events stay codes (as the log and --json name them); its times read as the
    other tables' do."""
    event = TrailEvent(index=3, event="delivered", at=T0_BOGOTA, actor="USA", officer=None,
                       reason=None, proof_verified=True, record={})  # fmt: skip

    async def trail(settings: object, msg_id: str) -> Any:
        return SimpleNamespace(events=[event], signed_by=["SEC"], witnesses=[],
                               checkpoint_size=4, verified=True)  # fmt: skip

    monkeypatch.setattr(audit_cmd, "audit_trail", trail)
    monkeypatch.setattr(audit_cmd.NodeSettings, "load", lambda home: None)
    assert main.main(["--lang", "fr", "audit", "trail", "--home", "/nowhere", "01JDX"]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[:4] == ["3", "2026-12-01T09:30:00Z", "delivered", "USA"]
