"""The application layer's answers to what an officer gets wrong in a tracing request or a
message: templates, priorities, the officer named, expiries, dates, the states asked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.node.application import Application, ApplicationError, OfficerIdentity
from services.node.application.models import InboxQuery, SendMessage
from services.node.application.plumbing import command
from services.node.application.procedure_models import (
    AcknowledgeTrace,
    AnswerTrace,
    FileTracingRequest,
    ForwardMessage,
)
from tests.support.casework import Network

OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")
KIND = "info.trafficking_routes"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA", "COL"])


def example(kind: str, **changes: Any) -> dict[str, Any]:
    return {**example_body(kind).model_dump(mode="json"), **changes}


def refused(call: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as exc:
        call()
    return exc.value


def trace(net: Network, body: dict[str, Any], **options: Any) -> Any:
    cmd = FileTracingRequest(officer=OFFICER, body=body, **{"to": ["USA"], **options})
    return Application(net["MEX"]).file_trace(cmd)


def test_a_tracing_template_sent_unedited_names_its_placeholders(net: Network) -> None:
    body = dict(Application.template("tracing.request").body)
    body["priority"] = "<fill in, e.g. routine>"  # as older templates asked for it
    error = refused(lambda: trace(net, body, dry_run=True))
    assert error.code == "body.not_filled_in" and "priority" in error.params["fields"]
    assert "firearm.markings.serial_number" in error.params["fields"]


def test_a_priority_the_schema_does_not_know_is_refused_naming_it(net: Network) -> None:
    error = refused(lambda: trace(net, example("tracing.request", priority="asap")))
    assert (error.code, error.params["problems"]) == (
        "body.invalid",
        [{"field": "priority", "problem": "enum", "input": "asap"}],
    )


def test_the_officer_named_is_always_the_officer_acting(net: Network) -> None:
    body = example("tracing.request")
    assert body["requesting_officer"]["name"] != OFFICER.name  # the example names another
    filed = trace(net, body, dry_run=True)
    assert filed.preview.body["requesting_officer"] == OFFICER.as_officer().model_dump(mode="json")
    own = OFFICER.as_officer().model_dump(mode="json") | {"email": "ana.ruiz@fgr.example"}
    filed = trace(net, example("tracing.request", requesting_officer=own))
    net.deliver()
    agent = OfficerIdentity(name="Kim Lee", position="Agent", agency="ATF")
    answer = example("tracing.response", request_msg_id=None)
    done = Application(net["USA"]).answer_trace(
        AnswerTrace(officer=agent, request_msg_id=filed.msg_id, body=answer, dry_run=True)
    )
    assert done.preview.body["responding_officer"]["name"] == "Kim Lee"
    net.deliver()
    view = Application(net["USA"]).show(filed.msg_id, agent)
    assert view.body["requesting_officer"] == own  # the contact kept: the very officer acting


def test_the_tracing_templates_leave_out_what_the_command_fills_in(net: Network) -> None:
    request = Application.template("tracing.request").body
    assert not {"due_at", "priority", "requesting_officer"} & set(request)
    response = Application.template("tracing.response").body
    assert not {"request_msg_id", "responding_officer"} & set(response)
    filed = trace(net, {k: example("tracing.request")[k] for k in request})
    net.deliver()
    answer = {k: example("tracing.response")[k] for k in response}
    done = Application(net["USA"]).answer_trace(
        AnswerTrace(officer=OFFICER, request_msg_id=filed.short_id, body=answer)
    )
    assert done.sealed


def test_an_expiry_at_or_before_sealing_is_refused_and_nothing_queued(net: Network) -> None:
    mex = Application(net["MEX"])
    cmd = SendMessage(officer=OFFICER, kind=KIND, body=example(KIND), to=["USA"],
                      handling=HandlingCode.H1, expires_at="2020-01-01")  # fmt: skip
    error = refused(lambda: mex.send(cmd))
    assert error.code == "value.invalid"
    assert error.params == {
        "field": "expires_at",
        "value": "2020-01-01T00:00:00+00:00",
        "expected": "future",
    }
    assert mex.inbox(InboxQuery(direction="all")) == []
    later = cmd.model_copy(update={"expires_at": datetime(2099, 1, 1, tzinfo=UTC)})
    assert mex.send(later).sealed


@pytest.mark.parametrize(
    ("model", "field", "typed"),
    [
        (SendMessage, "expires_at", "2026-13-01"),
        (AcknowledgeTrace, "expected_by", "2026-02-30"),
        (SendMessage, "expires_at", "31/12/2026"),
    ],
)
def test_a_time_that_is_no_time_names_the_format_expected(
    model: Any, field: str, typed: str
) -> None:
    given = {"officer": OFFICER.model_dump(), "request_msg_id": "x", "kind": KIND, "body": {}}
    given |= {"to": ["USA"]} if model is SendMessage else {}
    if model is AcknowledgeTrace:
        given = {k: given[k] for k in ("officer", "request_msg_id")}
    else:
        given.pop("request_msg_id")
    error = refused(lambda: command(model, **given, **{field: typed}))
    assert (error.code, error.params) == (
        "value.invalid",
        {"field": field, "value": typed, "expected": "datetime"},
    )


def test_the_states_asked_are_checked_as_any_recipient(net: Network) -> None:
    body = example("tracing.request")
    error = refused(lambda: trace(net, body, to=["XXX"]))
    assert (error.code, error.params["party"]) == ("recipient.unknown", "XXX")
    error = refused(lambda: trace(net, body, to=["mex"]))
    assert (error.code, error.params) == ("recipient.self", {"party": "MEX"})


def test_a_forward_previewed_shows_no_content(net: Network) -> None:
    mex = Application(net["MEX"])
    sent = mex.send(SendMessage(officer=OFFICER, kind=KIND, body=example(KIND), to=["USA"],
                                handling=HandlingCode.H1))  # fmt: skip
    net.deliver()
    usa = Application(net["USA"])
    cmd = ForwardMessage(officer=OFFICER, msg_id=sent.msg_id, to=["COL"], dry_run=True)
    done = usa.forward(cmd)
    assert done.preview is not None and done.preview.body == {}
    assert done.preview.kind == KIND and done.preview.recipients == ["COL"]
    assert usa.core.store.opens(sent.msg_id) == []
