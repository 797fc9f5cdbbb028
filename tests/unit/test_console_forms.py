"""Forms built from the message models: every input labelled in the four languages, what an
officer types rebuilt into the body the model validates, problems placed beside their inputs."""

from __future__ import annotations

import pytest

from schemas import BODY_MODELS
from services import i18n
from services.console.officer import forms, labels
from services.console.officer.messages import INFORMATION_KINDS, OPENING_KINDS
from services.i18n.codes import MESSAGES
from services.node.application import ERROR_CODES


@pytest.mark.parametrize("kind", sorted(k for k in BODY_MODELS if not k.startswith("protocol.")))
def test_every_field_and_code_value_of_every_kind_has_a_label(kind: str) -> None:
    for field in forms.form_fields(kind):
        for part in field.path.split("."):
            assert part.isdigit() or part in labels.FIELDS, f"{kind}: {part} has no label"
        for option in field.options:
            named = (len(option) == 3 and option.isupper()) or option in labels.VALUES
            assert named or option in ("A", "B", "C", "X", "1", "2", "3", "4", *i18n.LANGUAGES)
    assert kind in labels.KINDS


def test_every_application_error_code_has_a_message() -> None:
    assert [c for c in ERROR_CODES if c not in MESSAGES] == []


def test_a_filled_form_becomes_the_body_the_model_accepts() -> None:
    posted = {
        "title": "Corredor del Pacífico", "evaluation.source": "B",
        "evaluation.information": "2", "routes.0.legs.0.origin": "USA",
        "routes.0.legs.0.destination": "MEX", "routes.0.legs.0.mode": "road",
        "routes.0.legs.0.via": "", "routes.0.commodities": "munición",
        "groups_involved": "Grupo A,\nGrupo B", "period.start": "",
    }  # fmt: skip
    body = forms.body_from_form("info.trafficking_routes", posted)
    assert body == {
        "title": "Corredor del Pacífico",
        "evaluation": {"source": "B", "information": "2"},
        "routes": [{"legs": [{"origin": "USA", "destination": "MEX", "mode": "road"}],
                    "commodities": "munición"}],
        "groups_involved": ["Grupo A", "Grupo B"],
    }  # fmt: skip
    BODY_MODELS["info.trafficking_routes"].model_validate(
        {**body, "kind": "info.trafficking_routes"}
    )
    assert forms.flatten(body)["routes.0.legs.0.origin"] == "USA"
    assert forms.flatten(body)["groups_involved"] == "Grupo A, Grupo B"


def test_the_node_fills_the_due_date_so_the_form_does_not_ask_it() -> None:
    paths = [f.path for f in forms.form_fields("tracing.request")]
    assert "due_at" not in paths and "seizure.date" in paths
    seizure = next(f for f in forms.form_fields("tracing.request") if f.path == "seizure.kind")
    assert seizure.widget == "select" and seizure.options == ("seized", "recovered", "confiscated")


def test_offered_kinds_are_writable() -> None:
    for kind in INFORMATION_KINDS + OPENING_KINDS:
        assert forms.form_fields(kind)


def test_states_and_codes_read_in_the_readers_language() -> None:
    assert labels.state("MEX", "es") == "México"
    assert labels.state("BRA", "fr") == "Brésil"
    assert labels.value("sea", "pt") == "marítimo"
    assert labels.path_label("routes[1].legs[2].origin", "es") == "Rutas 1 > Tramos 2 > Origen"
    assert labels.path_label("routes.0.commodities", "fr") == "Itinéraires 1 > Marchandises"
    assert labels.explain("handling.H2", "pt").startswith("H2: não deve ser difundida")


def test_a_transfer_notice_takes_several_lines_and_its_transit_states_as_ticked_boxes() -> None:
    from starlette.datastructures import FormData

    licence = {"number": "L-1", "issued_by": "DCAM", "issued_on": "2026-10-01",
               "valid_until": "2027-10-01"}  # fmt: skip
    posted = [
        ("transfer_id", "SEDENA-2026-0093"), ("exporter.name", "SEDENA"),
        ("exporter.country", "MEX"), ("importer.name", "IMBEL"), ("importer.country", "BRA"),
        *[(f"{which}.{k}", v) for which in ("export_licence", "import_licence")
          for k, v in licence.items()],
        ("transit_states", "PAN"), ("transit_states", "COL"),
        ("items.0.line", "1"), ("items.0.category", "firearm"),
        ("items.0.description", "Fusil FX-05"), ("items.0.quantity", "120"),
        ("items.2.line", "2"), ("items.2.category", "ammunition"),
        ("items.2.description", "Cartuchos"), ("items.2.quantity", "24000"),
        ("expected_dispatch", "2026-12-10"), ("expected_arrival", "2026-12-28"),
    ]  # fmt: skip
    body = forms.body_from_form("transfer.notice", FormData(posted))
    assert body["transit_states"] == ["PAN", "COL"]
    assert [i["description"] for i in body["items"]] == ["Fusil FX-05", "Cartuchos"]  # row 2 blank
    BODY_MODELS["transfer.notice"].model_validate({"kind": "transfer.notice", **body})
    chosen = {f.path for f in forms.form_fields("transfer.notice") if f.directory}
    assert chosen == {"importer.country", "transit_states"}
    assert not any(f.required for f in forms.form_fields("transfer.notice") if f.row)
