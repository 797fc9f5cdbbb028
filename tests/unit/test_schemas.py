"""The wire contract: every model strict, bounded, exemplified, and its JSON Schema in step."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from schemas import BODY_MODELS, RECORD_MODELS, parse_body
from schemas import generate as schema_files
from schemas.base import PARTY_CODES
from schemas.registry import UnknownKindError, open_body
from schemas.wirejson import WireJSONError
from tests.unit.envelope_from_spec import published_validator

ALL_MODELS: dict[str, type[BaseModel]] = {**BODY_MODELS, **RECORD_MODELS}

FAMILY_KINDS = {
    "info": {
        "authorized_parties",
        "concealment_methods",
        "trafficking_routes",
        "legislative_measures",
        "money_laundering",
        "scientific_technological",
    },
    "tracing": {"request", "acknowledgement", "response", "reminder", "overdue"},
    "transfer": {
        "notice",
        "import_confirmation",
        "transit_authorization",
        "dispatch",
        "receipt_confirmation",
        "discrepancy",
        "receipt_overdue",
    },
    "delivery": {"proposal", "consent", "decline", "handover", "interception", "closure"},
    "confidentiality": {"disclosure_notice", "consent_request", "consent_answer"},
    "protocol": {"receipt", "rejection"},
}


def example(name: str) -> dict[str, Any]:
    extra = ALL_MODELS[name].model_config.get("json_schema_extra")
    assert isinstance(extra, dict) and extra.get("examples"), f"{name} has no example"
    data = json.loads(json.dumps(extra["examples"][0]))
    if name in BODY_MODELS:  # a body on the wire names its kind and version
        return {"kind": name, "schema_version": 1, **data}
    return data


def test_every_family_of_the_design_has_its_kinds() -> None:
    registered = {tuple(k.split(".", 1)) for k in BODY_MODELS}
    for family, kinds in FAMILY_KINDS.items():
        assert {(family, k) for k in kinds} <= registered, family
    assert set(RECORD_MODELS) >= {
        "directory.entry",
        "audit.event",
        "audit.checkpoint",
        "audit.inclusion_proof",
        "audit.consistency_proof",
    }


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_example_validates_and_round_trips(name: str) -> None:
    model = ALL_MODELS[name]
    obj = model.model_validate(example(name))
    assert model.model_validate_json(obj.model_dump_json()) == obj


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_example_validates_against_the_checked_in_json_schema(name: str) -> None:
    schema = json.loads((schema_files.OUT / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(example(name))


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_unknown_field_is_rejected(name: str) -> None:
    data = example(name) | {"comment": "not in the contract"}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ALL_MODELS[name].model_validate(data)


def test_checked_in_json_schema_matches_the_models() -> None:
    want = schema_files.rendered()
    have = {p.name: p.read_text() for p in schema_files.OUT.glob("*.json")}
    assert set(have) == set(want), "run `make schemas`"
    stale = [n for n in want if have[n] != want[n]]
    assert not stale, f"stale JSON Schema files, run `make schemas`: {stale}"


def test_drift_check_notices_an_edited_file(tmp_path: Any, monkeypatch: Any) -> None:
    for name, text in schema_files.rendered().items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(schema_files, "OUT", tmp_path)
    assert schema_files.main(["--check"]) == 0
    target = tmp_path / "tracing.request.schema.json"
    target.write_text(target.read_text().replace('"maxLength": 200', '"maxLength": 201', 1))
    assert schema_files.main(["--check"]) == 1


# --- field rules: one case per rule the contract states -------------------------------------


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = data
    *parents, last = path.split(".")
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


BAD = [
    # ISO 3166-1 alpha-3, validated against the standard's list
    ("info.trafficking_routes", "routes.0.legs.0.origin", "XXX", "ISO 3166-1 alpha-3"),
    ("info.trafficking_routes", "routes.0.legs.0.origin", "mex", "pattern"),
    ("tracing.request", "seizure.country", "MX", "at least 3"),
    # timezone-aware instants only
    ("tracing.request", "due_at", "2026-12-01T15:00:00", "timezone"),
    ("protocol.receipt", "stored_at", "2026-11-24 15:00", "timezone"),
    # bounded lengths and list sizes
    ("info.concealment_methods", "title", "x" * 201, "at most 200"),
    ("tracing.request", "firearm.markings.other_markings", ["m"] * 21, "at most 20"),
    ("transfer.notice", "transit_states", ["PAN"] * 21, "at most 20"),
    ("info.trafficking_routes", "routes", [], "at least 1"),
    # enumerations
    ("info.trafficking_routes", "evaluation.source", "E", "'A', 'B', 'C' or 'X'"),
    ("tracing.request", "priority", "whenever", "'routine' or 'urgent'"),
    ("protocol.rejection", "reason", "because", "Input should be"),
    # cross-field rules
    ("tracing.request", "priority", "urgent", "urgency_justification"),
    ("tracing.request", "firearm.markings.serial_number", None, "serial_obliterated"),
    ("tracing.response", "outcome", "not_found", "no chain"),
    ("transfer.notice", "transit_states", ["COL"], "transit state cannot be"),
    ("transfer.notice", "expected_arrival", "2026-12-01", "precedes"),
    ("transfer.notice", "items.1.line", 1, "unique"),
    ("transfer.notice", "export_licence.valid_until", "2026-01-01", "expires before"),
    ("transfer.transit_authorization", "decision", "refused", "states its reason"),
    ("transfer.discrepancy", "lines.0.quantity_received", 200, "must differ"),
    ("delivery.proposal", "participants", ["MEX", "USA"], "not a participant"),
    ("delivery.interception", "inventory", [], "needs the inventory"),
    ("delivery.interception", "decision", "continue_intact", "carries no inventory"),
    ("confidentiality.consent_request", "proposed_recipients", [], "names the proposed"),
    ("confidentiality.consent_answer", "conditions", [], "states the conditions"),
    ("info.trafficking_routes", "routes.0.legs.1.origin", "GTM", "not connected"),
    ("info.trafficking_routes", "period.end", "2025-01-01", "precedes its start"),
    ("audit.event", "reason", "expired", "carry a reason"),
    ("audit.inclusion_proof", "leaf_index", 8, "below tree_size"),
    ("audit.consistency_proof", "new_size", 5, "not be below"),
    ("directory.entry", "contacts.0.email", "not-an-address", "pattern"),
    ("directory.entry", "contacts.0.phone", "55 3686 5100", "pattern"),
    ("directory.entry", "contacts.0.languages", ["de"], "'es', 'en', 'fr' or 'pt'"),
    ("directory.entry", "version", 0, "greater than or equal to 1"),
]


@pytest.mark.parametrize(("name", "path", "value", "message"), BAD)
def test_field_rule(name: str, path: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ALL_MODELS[name].model_validate(_set(example(name), path, value))


def test_secretariat_is_a_party_but_not_a_country() -> None:
    req = example("confidentiality.consent_request")
    assert parse_body(
        "confidentiality.consent_request",
        json.dumps(req | {"proposed_recipients": ["SEC"]}).encode(),
    )
    with pytest.raises(ValidationError, match="ISO 3166-1"):
        ALL_MODELS["tracing.request"].model_validate(
            _set(example("tracing.request"), "seizure.country", "SEC")
        )


def test_obliterated_serial_needs_no_number() -> None:
    data = _set(example("tracing.request"), "firearm.markings.serial_number", None)
    data["firearm"]["markings"]["serial_obliterated"] = True
    assert ALL_MODELS["tracing.request"].model_validate(data)


def test_models_are_frozen() -> None:
    obj = ALL_MODELS["protocol.receipt"].model_validate(example("protocol.receipt"))
    with pytest.raises(ValidationError, match="frozen"):
        obj.msg_id = "019ab5c2-7d10-7a3e-8f21-5c9d0e4b6a72"  # type: ignore[attr-defined]


def test_parse_body_refuses_an_unknown_kind_and_a_future_schema_version() -> None:
    with pytest.raises(UnknownKindError):
        parse_body("tracing.rumour", b"{}")
    data = example("protocol.receipt") | {"schema_version": 2}
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        parse_body("protocol.receipt", json.dumps(data).encode())


def test_body_carries_its_kind_and_a_body_of_another_kind_fails() -> None:
    reminder = example("tracing.reminder")
    dumped = json.loads(ALL_MODELS["tracing.reminder"].model_validate(reminder).model_dump_json())
    assert dumped["kind"] == "tracing.reminder"
    with pytest.raises(ValidationError, match=r"tracing\.overdue"):
        parse_body("tracing.overdue", json.dumps(dumped).encode())


# --- a received body: what the published schema refuses, the node refuses ------------------------

RECEIPT = {
    "kind": "protocol.receipt",
    "schema_version": 1,
    "msg_id": "019ab5c2-7d10-7a3e-8f21-5c9d0e4b6a71",
    "envelope_sha256": "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592",
    "stored_at": "2026-11-24T15:00:01.250Z",
}


@pytest.mark.parametrize(
    "change",
    [
        {"kind": None},
        {"schema_version": None},
        {"schema_version": True},
        {"stored_at": 1795532401},
        {"stored_at": "2026-11-24 15:00:01Z"},
        {"stored_at": "2026-11-24T15:00:01"},
        {"stored_at": "2026-11-24T15:00:01.250Z\n"},
        {"stored_at": "2026-11-24T15:00:01.2500000Z"},
    ],
    ids=str,
)
def test_received_body_refused_by_the_published_schema_is_refused_by_the_node(
    change: dict[str, Any],
) -> None:
    body = {k: v for k, v in (RECEIPT | change).items() if v is not None}
    assert not published_validator("protocol.receipt").is_valid(body)
    with pytest.raises(ValueError):
        open_body("protocol.receipt", json.dumps(body).encode())


def test_received_body_the_published_schema_accepts_opens() -> None:
    assert published_validator("protocol.receipt").is_valid(RECEIPT)
    assert open_body("protocol.receipt", json.dumps(RECEIPT).encode()).kind == "protocol.receipt"


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + json.dumps(RECEIPT).encode(),
        json.dumps(RECEIPT)
        .encode()
        .replace(b'"schema_version": 1', b'"schema_version": 1, "schema_version": 1'),
        b"[]",
    ],
    ids=["bom", "duplicate-member", "array"],
)
def test_received_body_that_is_not_strict_json_or_not_an_object_is_refused(data: bytes) -> None:
    with pytest.raises(WireJSONError):
        open_body("protocol.receipt", data)


def test_published_schemas_require_kind_and_schema_version_of_every_body() -> None:
    for kind in BODY_MODELS:
        schema = json.loads((schema_files.OUT / f"{kind}.schema.json").read_text())
        assert schema["required"][:2] == ["kind", "schema_version"], kind


def test_published_schemas_enumerate_the_country_codes_the_node_accepts() -> None:
    index = json.loads((schema_files.OUT / "index.json").read_text())
    assert "SEC" in index["party_codes"]
    assert set(index["party_codes"]) == set(PARTY_CODES)
    tracing = json.dumps(json.loads((schema_files.OUT / "tracing.request.schema.json").read_text()))
    assert '"XXX"' not in tracing and '"AUT"' in tracing


def test_item_list_with_repeated_line_numbers_carries_the_published_rule() -> None:
    schema = json.loads((schema_files.OUT / "transfer.notice.schema.json").read_text())
    assert schema["properties"]["items"]["x-cifta-unique-member"] == "line"
