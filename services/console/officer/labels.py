"""What officers read instead of the wire's names: field labels, code values, kinds, and the
explanations of handling and evaluation codes, each a gettext message in the four languages.

Messages between states carry codes, never prose: the reader sees each code in the reader's
language. States are named by Babel from ISO 3166 (alpha-3 through pycountry).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import pycountry
from babel import Locale
from babel.units import format_unit

from services import i18n
from services.i18n import N_, kinds, values
from services.i18n.values import VALUES as VALUES  # the forms list what has a name

if TYPE_CHECKING:
    from services.node.application.procedure_models import TimelineEntry

#: A body field's label, by the property's name in the message models.
FIELDS: dict[str, str] = {
    "address": N_("Address"), "adopted_on": N_("Adopted on"), "agency": N_("Agency"),
    "area": N_("Area"), "as_of": N_("As of"), "at": N_("At"),
    "authorization_number": N_("Authorization number"), "border_crossing": N_("Border crossing"),
    "calibre": N_("Calibre"), "carrier": N_("Carrier"), "case_id": N_("Case"),
    "case_reference": N_("Case reference"), "category": N_("Category"),
    "chain": N_("Chain of transfers"), "channels": N_("Channels"),
    "circumstances": N_("Circumstances"), "closed_at": N_("Closed at"),
    "commodities": N_("Commodities"), "conditions": N_("Conditions"),
    "consignment": N_("Consignment"), "contact": N_("Contact"),
    "container_ids": N_("Container numbers"), "conveyance": N_("Conveyance"),
    "countries_concerned": N_("Countries concerned"), "country": N_("Country"),
    "country_of_manufacture": N_("Country of manufacture"), "date": N_("Date"),
    "days_overdue": N_("Days overdue"), "decided_at": N_("Decided at"),
    "decision": N_("Decision"), "description": N_("Description"),
    "destination": N_("Destination"), "detection": N_("Detection"),
    "disclosed_to": N_("Disclosed to"), "dispatched_at": N_("Dispatched at"),
    "document": N_("Document"), "documents": N_("Documents"), "due_at": N_("Due"),
    "email": N_("Email"), "end": N_("End"), "evaluation": N_("Evaluation"),
    "expected_answer_by": N_("Answer expected by"), "expected_arrival": N_("Expected arrival"),
    "expected_dispatch": N_("Expected dispatch"), "experience": N_("Experience"),
    "export_licence": N_("Export licence"), "exporter": N_("Exporter"),
    "firearm": N_("Firearm"), "first_observed": N_("First observed"),
    "from_country": N_("From (country)"), "from_party": N_("From (party)"),
    "from_state": N_("From (state)"), "groups_involved": N_("Groups involved"),
    "import_licence": N_("Import licence"), "import_marking": N_("Import marking"),
    "importer": N_("Importer"), "indicators": N_("Indicators"),
    "information": N_("Information"), "instrument": N_("Instrument"),
    "inventory": N_("Inventory"), "issued_by": N_("Issued by"), "issued_on": N_("Issued on"),
    "items": N_("Items"), "kind": N_("Kind"), "language": N_("Language"),
    "legal_basis": N_("Legal basis"), "legs": N_("Legs"),
    "licence_number": N_("Licence number"), "licence_valid_until": N_("Licence valid until"),
    "line": N_("Line"), "lines": N_("Lines"), "manufacturer": N_("Manufacturer"),
    "markings": N_("Markings"), "measures": N_("Measures"), "methods": N_("Methods"),
    "mode": N_("Mode"), "model": N_("Model"), "name": N_("Name"),
    "narrative": N_("Narrative"), "new_seal_ids": N_("New seal numbers"), "note": N_("Note"),
    "notes": N_("Notes"), "number": N_("Number"), "objective": N_("Objective"),
    "officer": N_("Officer"), "operation_id": N_("Operation"), "origin": N_("Origin"),
    "other_markings": N_("Other markings"), "outcome": N_("Outcome"),
    "participants": N_("Participants"), "parties": N_("Parties"), "period": N_("Period"),
    "phone": N_("Phone"), "place": N_("Place"),
    "place_of_manufacture": N_("Place of manufacture"),
    "planned_disclosure_at": N_("Planned disclosure"), "position": N_("Position"),
    "priority": N_("Priority"), "proposed_recipients": N_("Proposed recipients"),
    "purpose": N_("Purpose"), "quantity": N_("Quantity"),
    "quantity_expected": N_("Quantity expected"), "quantity_received": N_("Quantity received"),
    "reason": N_("Reason"), "received_at": N_("Received at"), "reference": N_("Reference"),
    "remarks": N_("Remarks"), "request_msg_id": N_("Request"),
    "requesting_officer": N_("Requesting officer"),
    "responding_officer": N_("Responding officer"), "role": N_("Role"), "route": N_("Route"),
    "routes": N_("Routes"), "scope": N_("Scope"), "seal_ids": N_("Seal numbers"),
    "seals_intact": N_("Seals intact"), "seizure": N_("Seizure"), "sequence": N_("Sequence"),
    "serial_number": N_("Serial number"), "serial_obliterated": N_("Serial number obliterated"),
    "sha256": N_("SHA-256"), "source": N_("Source"), "start": N_("Start"),
    "subject_msg_id": N_("Subject message"), "summary": N_("Summary"), "tags": N_("Tags"),
    "techniques": N_("Techniques"), "text": N_("Text"), "title": N_("Title"),
    "to_country": N_("To (country)"), "to_party": N_("To (party)"),
    "to_state": N_("To (state)"), "transfer_id": N_("Transfer"),
    "transit_states": N_("Transit states"), "transport_document": N_("Transport document"),
    "type": N_("Type"), "urgency_justification": N_("Justification of urgency"),
    "url": N_("URL"), "use": N_("Use"), "valid_until": N_("Valid until"), "via": N_("Via"),
    "window": N_("Window"), "year": N_("Year"),
}  # fmt: skip

#: The kinds of message, as lists and forms name them (shared with the application layer).
KINDS = kinds.KINDS

#: What a handling code, an evaluation code or confidentiality means for the reader (Art. XII;
#: the 4x4 evaluation grades).
EXPLANATIONS: dict[str, str] = {
    "handling.H0": N_(
        "H0: may be used only to prevent and combat the offences the "
        "Convention covers."
    ),
    "handling.H1": N_(
        "H1: not to be used in judicial proceedings without the "
        "provider's permission."
    ),
    "handling.H2": N_(
        "H2: not to be disseminated further without the provider's "
        "permission: ask for consent before forwarding."
    ),
    "handling.H3": N_("H3: other restrictions, stated by the provider below."),
    "confidential": N_(
        "Confidential at the provider's request (Art. XII): tell the "
        "provider before any disclosure required by law."
    ),
    "evaluation.source.A": N_(
        "Source A: no doubt of authenticity, trustworthiness and "
        "competence."
    ),
    "evaluation.source.B": N_("Source B: has proved reliable in most instances."),
    "evaluation.source.C": N_("Source C: has proved unreliable in most instances."),
    "evaluation.source.X": N_("Source X: reliability cannot be assessed."),
    "evaluation.information.1": N_("Information 1: accuracy not in doubt."),
    "evaluation.information.2": N_(
        "Information 2: known personally to the source, not to the "
        "official passing it on."
    ),
    "evaluation.information.3": N_(
        "Information 3: not known personally to the source, "
        "corroborated by other information."
    ),
    "evaluation.information.4": N_(
        "Information 4: not known personally to the source and not "
        "corroborated."
    ),
}  # fmt: skip


def label(name: str, language: str) -> str:
    """The label of a body field named ``name`` (a path's last part)."""
    text = FIELDS.get(name)
    return i18n.gettext_for(language, text) if text else name.replace("_", " ").capitalize()


def path_label(path: str, language: str) -> str:
    """A field path as labels (``routes[1].legs[2].origin`` -> Routes 1 > Legs 2 > Origin)."""
    parts: list[str] = []
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            parts[-1] = f"{parts[-1]} {part.strip('[]')}"
        elif part.isdigit():
            parts[-1] = f"{parts[-1]} {int(part) + 1}"
        elif part:
            parts.append(label(part, language))
    return " > ".join(parts)


def value(text: str, language: str) -> str:
    """A code value in the reader's language: a state's name, a language's, or a listed code."""
    if len(text) == 3 and text.isupper():
        return state(text, language)
    return values.value(text, language)


def kind(name: str, language: str) -> str:
    text = KINDS.get(name)
    return i18n.gettext_for(language, text) if text else name


def explain(code: str, language: str) -> str:
    text = EXPLANATIONS.get(code)
    return i18n.gettext_for(language, text) if text else code


@cache
def state(code: str, language: str) -> str:
    """``MEX`` as its reader names it (México, Mexique, ...); the code itself when unknown."""
    country = pycountry.countries.get(alpha_3=code)
    if country is None:
        return code
    return str(Locale.parse(language).territories.get(country.alpha_2, code))


#: What the audit log records of a message (schemas.audit.EventType), as its trail shows it.
AUDIT_EVENTS: dict[str, str] = {
    "sent": N_("sent"), "stored": N_("stored at the hub"), "delivered": N_("delivered"),
    "opened": N_("opened"), "replied": N_("replied to"), "forwarded": N_("forwarded"),
    "disclosure_notified": N_("disclosure notified"),
    "consent_requested": N_("consent requested"), "consent_answered": N_("consent answered"),
    "exported": N_("exported"), "rejected": N_("rejected"), "quarantined": N_("quarantined"),
    "lookup_evaluated": N_("lookup evaluated"), "unmatched": N_("unmatched"),
    "attachment_stored": N_("attachment stored"), "attachment_fetched": N_("attachment fetched"),
}  # fmt: skip


def audit_event(code: str, language: str) -> str:
    text = AUDIT_EVENTS.get(code)
    return i18n.gettext_for(language, text) if text else code


def timeline(entry: TimelineEntry, language: str) -> str:
    """A controlled delivery's timeline entry in the reader's language, its codes named."""
    return values.timeline(entry.code, entry.params, language)


def stage(code: str, language: str) -> str:
    """Where a licensed transfer stands (Art. IX), in the reader's language."""
    return i18n.translate(f"stage.{code}", {}, language)


def status(code: str, language: str) -> str:
    return values.status(code, language)


def action(code: str, language: str) -> str:
    """An action of the officer's own log (the account page), in the reader's language."""
    return values.action(code, language)


def size(n: int, language: str) -> str:
    """A file's size as its reader writes it (``48,2 ko``, ``12.5 MB``); 1000-based, as the units
    are named (CLDR ``digital-kilobyte``)."""
    locale = i18n.babel_locale(language)
    if n < 1000:
        return format_unit(n, "digital-byte", length="short", locale=locale)
    unit, value = ("digital-kilobyte", n / 1000) if n < 1_000_000 else ("digital-megabyte", n / 1e6)
    return format_unit(value, unit, length="short", locale=locale, format="#,##0.#")
