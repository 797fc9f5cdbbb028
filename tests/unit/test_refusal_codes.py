"""The workflows' refusals cross the layers as a code plus parameters (issue 13): each code has
its message in the four catalogs, the application layer carries it as it is, and each front end
renders it in its reader's language, never from the workflow's own English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.registry import example_body
from schemas.tracing import Outcome, TracingRequest
from services import i18n
from services.cli import messages
from services.i18n.codes import MESSAGES
from services.node.application.plumbing import step_refused
from services.node.workflows.errors import REFUSAL_CODES, IllegalTransition, NotYet
from services.node.workflows.tracing import Answered, apply, file, requested_states

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REQUEST = example_body("tracing.request")
assert isinstance(REQUEST, TracingRequest)


def test_every_refusal_code_has_its_message_and_no_message_is_left_without_a_code() -> None:
    refusal_messages = {c.removeprefix("refusal.") for c in MESSAGES if c.startswith("refusal.")}
    assert set(REFUSAL_CODES) == refusal_messages
    assert len(REFUSAL_CODES) == len(set(REFUSAL_CODES))


@pytest.mark.parametrize("language", ["es", "fr", "pt"])
def test_every_refusal_is_translated(language: str) -> None:
    untranslated = [
        code
        for code in REFUSAL_CODES
        if i18n.translate(f"refusal.{code}", {}, language) == MESSAGES[f"refusal.{code}"]
    ]
    assert untranslated == []


def test_a_refusal_carries_its_code_and_parameters_and_reads_as_english_in_logs() -> None:
    exc = NotYet("trace.no_request", request="m1", state="COL")
    assert (exc.code, exc.params) == ("trace.no_request", {"request": "m1", "state": "COL"})
    assert str(exc) == "no tracing request m1 to COL"  # the sealed rejection's detail


def test_the_workflow_refuses_with_a_code() -> None:
    with pytest.raises(IllegalTransition) as refused:
        requested_states(REQUEST, ["MEX"], "MEX")
    assert (refused.value.code, refused.value.params) == ("trace.no_state", {})

    trace = file("m1", REQUEST, "MEX", "USA", T0)
    with pytest.raises(IllegalTransition) as refused:
        apply(trace, Answered("COL", Outcome.FOUND, T0 + timedelta(days=1)))
    assert refused.value.code == "trace.not_asked"
    assert refused.value.params == {"party": "COL", "requested": "USA"}


def test_the_layer_carries_the_code_and_each_front_end_renders_it_in_its_language() -> None:
    error = step_refused("tracing.reminder", IllegalTransition("trace.not_due", due="2026-12-01"))
    assert error.to_json() == {
        "code": "procedure.step_refused",
        "params": {"kind": "tracing.reminder", "reason": "trace.not_due", "due": "2026-12-01"},
    }
    line = messages.error(error.code, error.params)
    assert line == "tracing.reminder: the request is not due until 2026-12-01"
    assert i18n.translate(error.code, error.params, "es") == (
        "El procedimiento no permite este paso ahora "
        "(el plazo de la solicitud no vence hasta 2026-12-01)."
    )
    assert i18n.translate(error.code, error.params, "pt") == (
        "O procedimento não permite esta etapa agora (o prazo do pedido só vence em 2026-12-01)."
    )


def test_a_refusal_of_a_step_of_its_own_kind_keeps_the_steps_kind() -> None:
    error = step_refused("transfer.notice", IllegalTransition("art12.not_a_step", kind="x.y"))
    assert error.params["kind"] == "transfer.notice"
    assert messages.error(error.code, error.params) == (
        "transfer.notice: transfer.notice is not an Art. XII step"
    )
