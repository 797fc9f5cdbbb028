"""docs/asyncapi/: the AsyncAPI 3.0.0 documents FastStream generates from the node's and the audit
service's brokers, checked in; this fails when the code and the documents drift apart (issue 13).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import yaml
from jsonschema import Draft7Validator

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asyncapi_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_documents_are_what_the_code_generates_now() -> None:
    rendered = generator().render()
    assert set(rendered) == {"node.yaml", "audit.yaml"}
    for name, text in rendered.items():
        held = (DOCS / name).read_text()
        assert held == text, f"docs/asyncapi/{name} is out of date: run `make asyncapi`"


def test_the_documents_are_asyncapi_3_listing_what_each_service_consumes() -> None:
    node = yaml.safe_load((DOCS / "node.yaml").read_text())
    audit = yaml.safe_load((DOCS / "audit.yaml").read_text())
    for doc in (node, audit):
        assert doc["asyncapi"] == "3.0.0"
        assert doc["servers"]["development"]["host"] == "hub:4222"
    assert {c["address"] for c in node["channels"].values()} == {"inbox.MEX.>"}
    addresses = {c["address"] for c in audit["channels"].values()}
    assert {"audit.query.*", "audit.events.MEX.>", "audit.events.COL.>"} <= addresses
    assert all(op["action"] == "receive" for op in node["operations"].values())


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_each_consumed_message_has_the_contracts_payload_and_every_reference_resolves() -> None:
    node = yaml.safe_load((DOCS / "node.yaml").read_text())
    audit = yaml.safe_load((DOCS / "audit.yaml").read_text())
    [inbox] = node["components"]["messages"].values()
    assert inbox["payload"] == {"$ref": "#/components/schemas/Envelope"}
    envelope = node["components"]["schemas"]["Envelope"]
    assert envelope["required"] == [
        "v",
        "protected",
        "iv",
        "ciphertext",
        "recipients",
        "signatures",
    ]
    for doc in (node, audit):
        assert "EmptyPayload" not in doc["components"]["schemas"]
        for ref in _refs(doc):
            if ref.startswith("#/components/schemas/"):
                assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    events = [m for n, m in audit["components"]["messages"].items() if n.startswith("audit.events")]
    assert events and all(len(m["payload"]["oneOf"]) == 2 for m in events)


def _inlined(node: object, components: dict[str, object]) -> object:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return _inlined(components[ref.rsplit("/", 1)[1]], components)
        return {k: _inlined(v, components) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, components) for v in node]
    return node


def test_the_envelope_payload_reads_the_same_under_draft_07_asyncapis_default() -> None:
    """AsyncAPI 3.0.0 reads a payload with no schemaFormat as its own schema format, a superset
    of JSON Schema draft 07: every well-formed envelope vector must pass it there too."""
    node = yaml.safe_load((DOCS / "node.yaml").read_text())
    components = node["components"]["schemas"]
    envelope = _inlined(components["Envelope"], components)
    validator = Draft7Validator(envelope)  # type: ignore[arg-type]
    vectors = json.loads((DOCS.parent / "vectors" / "envelope-v1.json").read_text())["vectors"]
    reasons = {"malformed", "unsupported_version", "unsupported_algorithm", "oversized"}
    well_formed = [v for v in vectors if v["expect"].get("reason") not in reasons]
    assert len(well_formed) >= 60
    for vector in well_formed:
        assert list(validator.iter_errors(json.loads(vector["envelope"]))) == [], vector["name"]
