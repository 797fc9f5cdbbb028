"""Generate the AsyncAPI 3.0.0 documents of the node and the audit service (``make asyncapi``).

Each is FastStream's own document (``faststream.specification.AsyncAPI``, what ``faststream docs
gen`` writes) of the very broker the service runs: a node's broker as ``NodeRuntime`` builds it
(for the example state MEX of a throw-away hub home), the audit service's as ``AuditService``
builds it (for the example states MEX, USA and COL). The servers are named ``nats://hub:4222``, as
in docker-compose.yml. tests/unit/test_asyncapi.py fails when the checked-in files drift.

Only what the services subscribe to is listed: they publish with ``broker.publish`` to subjects
built per message (services/core/subjects.py), which FastStream does not document. The handlers
take the raw bytes (a sender's headers decide nothing), so FastStream finds no payload type; the
payloads are then written in from the published contract: the envelope's JSON Schema
(schemas/envelope_schema.py) for an inbox, the envelope or a node's signed event for the audit
service's consumers.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from faststream.specification import AsyncAPI  # noqa: E402

from schemas.base import PARTY_CODES  # noqa: E402
from schemas.envelope_schema import envelope_schema, header_schema  # noqa: E402
from services.audit.log import AuditLog  # noqa: E402
from services.audit.service import AuditService, AuditSettings  # noqa: E402
from services.core.events import SignedEvent  # noqa: E402
from services.core.logs import configure  # noqa: E402
from services.node.app import NodeRuntime  # noqa: E402
from services.testbed.hub import build_hub  # noqa: E402

OUT = Path(__file__).resolve().parent
HUB_URL = "nats://hub:4222"
VERSION = "0.1.0"
NODE = """A state's node (here MEX): it pulls its inbox stream INBOX_<state> through its durable
consumer `node` (created by the secretariat's provisioning), with manual acknowledgement. Each
message is a signed, end-to-end encrypted envelope (docs/envelope.md); the node publishes its
receipts, rejections and audit events with the subjects of services/core/subjects.py."""
AUDIT = """The secretariat's audit service: one pull consumer per state on the AUDIT stream (every
inbox, sourced, and the nodes' signed events), and the questions each state may ask on
audit.query.<state> (docs/operations.md)."""


def render() -> dict[str, str]:
    """The documents, by file name."""
    configure(json=True, level="ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hub = build_hub(root)
        node = NodeRuntime(hub.node_settings("MEX", root, hub_url=HUB_URL))
        settings = AuditSettings(url=HUB_URL, seed="unused", parties=["MEX", "USA", "COL"])
        audit = AuditService(
            AuditLog(root / "audit.db"), ed25519.Ed25519PrivateKey.generate(), dict, settings
        )
        docs = {
            "node.yaml": _document(node.broker, "CIFTA Exchange node", NODE),
            "audit.yaml": _document(audit.broker, "CIFTA Exchange audit service", AUDIT),
        }
        node.store.close()
        node.register.close()
        audit.log.close()
    return docs


def _document(broker: object, title: str, description: str) -> str:
    spec = AsyncAPI(
        broker,  # type: ignore[arg-type]
        title=title,
        version=VERSION,
        description=" ".join(description.split()),
        schema_version="3.0.0",
    )
    # keys sorted: FastStream lists channels in an order that varies between runs
    document = spec.to_specification().to_jsonable()
    _write_payloads(document)
    return str(yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100))


_REF = "#/components/schemas/"
_PARTY = {"type": "string", "enum": list(PARTY_CODES)}


def _component(schema: dict[str, Any]) -> dict[str, Any]:
    """A published schema as an AsyncAPI component: no ``$schema``/``$id``, references to the
    other components, the party codes named once."""

    def walk(node: Any) -> Any:
        if node == _PARTY:
            return {"$ref": f"{_REF}PartyCode"}
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k not in ("$schema", "$id")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if node == "envelope.protected.schema.json":
            return f"{_REF}ProtectedHeader"
        return node

    return dict(walk(schema))


def _write_payloads(document: dict[str, Any]) -> None:
    """Each consumed message's payload, from the contract (FastStream's would be empty)."""
    schemas = document["components"]["schemas"]
    schemas.pop("EmptyPayload", None)
    schemas["PartyCode"] = {**_PARTY, "description": "ISO 3166-1 alpha-3, or SEC"}
    schemas["Envelope"] = _component(envelope_schema())
    schemas["ProtectedHeader"] = _component(header_schema())
    signed_event = SignedEvent.model_json_schema()
    signed_event["description"] = (
        "A node's audit event: `event` is the base64url of the event's JSON "
        "(schemas/json/audit.event.schema.json), `sig` its Ed25519 signature by the key `kid`."
    )
    schemas["SignedEvent"] = signed_event
    schemas["AuditQuestion"] = {
        "type": "object",
        "description": "A state's question to the audit service: a proof, its records, or a "
        "cosignature to file (docs/operations.md, the audit service).",
    }
    for name, message in document["components"]["messages"].items():
        if name.startswith("inbox."):
            message["payload"] = {"$ref": f"{_REF}Envelope"}
        elif name.startswith("audit.events."):
            # the state's consumer reads its inbox (sourced) and the events its node filed
            message["payload"] = {
                "oneOf": [{"$ref": f"{_REF}Envelope"}, {"$ref": f"{_REF}SignedEvent"}]
            }
        elif name.startswith("audit.query."):
            message["payload"] = {"$ref": f"{_REF}AuditQuestion"}
        else:
            raise AssertionError(f"no payload written for {name}: add it here")


def main() -> None:
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {(OUT / name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
