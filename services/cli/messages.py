"""Every English string the officer's commands show, by code: the application layer's error and
notice codes, kind titles, the explanations of handling and evaluation codes, the words of the
tables. One dictionary, so that gettext catalogs (es, en, fr, pt) can take it over: each value is
a ``str.format`` string over the code's parameters.
"""

from __future__ import annotations

from typing import Any

from services.i18n.codes import MESSAGES

#: The option or argument a person typed, by the command field it fills (where it is not simply
#: ``--`` plus the field's name with hyphens).
OPTIONS: dict[str, str] = {
    "case_id": "--case",
    "expires_at": "--expires",
    "from_state": "--from",
    "to_state": "--to",
    "lines": "--line",
    "seals": "--seal",
    "new_seals": "--new-seal",
    "containers": "--container",
    "conditions": "--condition",
    "remarks": "--remark",
    "msg_id": "MSG_ID",
    "request_msg_id": "REQUEST_MSG_ID",
    "transfer_id": "TRANSFER_ID",
    "operation_id": "OPERATION_ID",
    "officer": "--officer",
    "justification": "--justification",
    "handling": "--handling",
    "note": "--note",
    "body": "--body",
    "attachments": "--attach",
}

#: What a format code (``value.invalid``'s ``expected``) asks for.
FORMATS: dict[str, str] = {
    "date": "a date, YYYY-MM-DD",
    "datetime": "a date YYYY-MM-DD or an RFC 3339 time such as 2026-12-01T09:30:00Z",
    "integer": "a whole number",
    "one_of": "one of {choices}",
    "line_quantity": "LINE=QUANTITY, e.g. 1=40",
    "line_text": "LINE=TEXT, e.g. 2=crate damaged",
    "officer": '"Name|Position|Agency", e.g. "Ana Ruiz|Analyst|FGR"',
    "json_file": "a file holding a JSON list",
    "value": "a valid value",
    # an expiry at or before sealing: every recipient would reject the message as expired
    "future": "a time after now (the message would arrive expired)",
}

TEXT: dict[str, str] = {
    # -- errors (services/node/application/errors.py) --
    "node.no_home": "no node home: pass --home or set CIFTA_NODE_HOME",
    "node.not_a_home": "{home} is not a node home: run `cifta node init` first",
    "node.bad_settings": "{home}/node.json or CIFTA_NODE_*: {field}: {problem}",
    "node.passphrase_unset": "the key file's passphrase variable {variable} is not set",
    "node.keys_unreadable": "{problem}",
    "node.directory_unreadable": "{problem}",
    "node.clock_off": "{problem}",
    "officer.missing": "{option} is required: {expected} (or set CIFTA_OFFICER); every action "
    "is recorded under the officer's name",
    "officer.incomplete": "{option} {value!r}: expected {expected}",
    "message.not_found": "no message {msg_id}",
    "message.ambiguous_id": "{prefix} matches several messages: {candidates}; type more of it",
    "message.id_too_short": "{prefix!r}: type at least {minimum} characters of the message id",
    "message.not_received": "{msg_id} is not a message this node received",
    "message.not_sent": "{msg_id} was received, not sent: `cifta show` opens it",
    "message.unreadable": "message {msg_id} cannot be opened: {reason}",
    "kind.unknown": "unknown kind {kind!r}; `cifta template --list` shows them",
    "kind.protocol": "{kind}: receipts and rejections are sent by the node itself",
    "body.not_json": "the body is not JSON",
    "body.not_filled_in": "the {kind} body still has template placeholders to fill in: {fields}",
    "body.invalid": "the body is not a valid {kind}: {problems}",
    "body.mismatch": "the body's {field} is {found}, not {expected}",
    "value.invalid": "{option} {value!r}: expected {expected}",
    "field.required": "{option} is required{when}",
    "field.invalid": "{option}: {problem}",
    "recipient.none": "no recipient: name the states with --to",
    "recipient.self": "{party} is this node: a node does not send to itself",
    "recipient.unknown": "{party} is not on the network (not in the directory){problem}",
    "recipient.off_network": "{states} (country of manufacture or of last import) is not on the "
    "network: name the state to ask with --to",
    "compose.refused": "{problem}",
    "procedure.step_refused": "{kind}: {reason}",
    "procedure.not_found": "no {what} {id}{owner}",
    "procedure.ambiguous": "{what} {id} exists from several states ({owners}): pass {option}",
    "procedure.not_a_party": "{party} is neither the importing nor a transit state of {what} {id}",
    "article12.refused": "{rule}. To proceed: {remedy}",
    "audit.unreachable": "the audit service did not answer at {hub_url}: is it running?",
    "audit.refused": "{problem}",
    "audit.checkpoint_invalid": "the checkpoint does not verify: {problem}",
    "rebuild.refused": "casework not rebuilt: {count} message(s) this node sent cannot be opened "
    "({reasons}), "
    "and the procedures they started would be lost. Nothing was changed; restore the key file "
    "that holds their keys (a keys.replaced-*.json, a backup) and run it again",
    "export.exists": "{path} exists: an export never overwrites a file",
    "io.failed": "{path}: {problem}",
    "attachment.no_file": "{option} {path}: no such file",
    "attachment.duplicate": "{option} {path}: another file attached is named {name!r} too; "
    "a message's attachments need distinct names",
    "attachment.unreadable": "{option} {path}: cannot be read whole ({problem}); attach a "
    "regular file that does not change while it is sent",
    "attachment.on_leaf": "{option}: {party}'s node runs on a leaf, which cannot store "
    "attachments at the hub yet; send the files from a node connected to the hub directly",
    "attachment.invalid": "the attachments cannot be sent: {problem}",
    "attachment.refused": "{reason}: {detail}",
    "attachment.upload_incomplete": "{problem}",
    "attachment.hub_unreachable": "cannot store the attachments at the hub at {hub_url} "
    "({problem}); nothing was queued: run the same command again",
    "attachment.not_found": "message {msg_id} has no attachment {name!r} (it has: {names})",
    "attachment.not_here": "{name}: {state} (the running node fetches the attachments of the "
    "messages it stores)",
    "attachment.out_exists": "{option} {path} exists; pass --force to replace it",
    "attachment.too_large": "{name} is larger than the {limit} allowed for an attachment",
    "forward.has_attachments": "message {msg_id} has {count} attachment(s), which are not "
    "forwarded yet: ask its sender to send it to those states with them",
    "attachments.sent": "with {names}",
    "attachment.state.held": "held",
    "attachment.state.pending": "not fetched yet",
    "attachment.state.refused": "refused: {reason}",
    # problems inside a body (pydantic's error types)
    "problem.missing": "missing",
    "problem.extra_forbidden": "not a field of this kind",
    "problem.string_too_short": "empty",
    "problem.string_too_long": "too long",
    "problem.string_pattern_mismatch": "not in the expected form",
    "problem.enum": "not one of the allowed codes",
    "problem.literal_error": "not one of the allowed values",
    "problem.date_from_datetime_parsing": "not a date (YYYY-MM-DD)",
    "problem.datetime_from_date_parsing": "not a time (RFC 3339)",
    "problem.timezone_aware": "a time needs its offset (Z or +hh:mm)",
    "problem.int_parsing": "not a whole number",
    "problem.value_error": "{detail}",
    "field.only_with_h3": "only with --handling H3 (the restriction of an H3 message)",
    # -- notices --
    "queued": "queued {kind} {msg_id} for {recipients}",
    "preview": "preview (nothing sealed, nothing queued): {title} from {sender} to {recipients}",
    "tracing.due": "due {due_at} UTC ({priority})",
    "tracing.not_asked_off_network": "not on the network, not asked: {states}",
    "transfer.discrepancy_reported": "quantities differ: discrepancy report queued",
    "transfer.received_as_dispatched": "quantities as dispatched",
    "delivery.consent_asked": "operation {operation_id}: consent asked of {states}",
    "disclosure.originator_told": "the originator is told before the disclosure (Art. XII)",
    "forward.copy_of": "forwarded copy of {msg_id}",
    "opened_by": "opened by {officer} (recorded)",
    "exported": "exported {kind} {msg_id} to {path} (0600); recorded in the audit log",
    "rebuilt": "procedures rebuilt from {applied} messages ({skipped} refused again, not applied)",
    "broken_pipe": "",
    # -- explanations of codes a reader meets --
    "handling.H0": "H0: usable only to prevent and combat the offences the Convention covers",
    "handling.H1": "H1: not to be used in judicial proceedings without the provider's permission",
    "handling.H2": "H2: not to be passed on further without the provider's permission",
    "handling.H3": "H3: other restrictions, stated in the message: {note}",
    "confidential": "confidential: the provider asked for confidentiality (Art. XII)",
    "evaluation.source.A": "source A: reliable",
    "evaluation.source.B": "source B: mostly reliable",
    "evaluation.source.C": "source C: not reliable",
    "evaluation.source.X": "source X: reliability cannot be judged",
    "evaluation.information.1": "information 1: known to be true without reservation",
    "evaluation.information.2": "information 2: known personally to the source, not to the "
    "official passing it on",
    "evaluation.information.3": "information 3: not known personally to the source, "
    "corroborated by information already recorded",
    "evaluation.information.4": "information 4: not known personally to the source and cannot "
    "be corroborated",
    # -- kind titles --
    "kind.confidentiality.consent_answer": "Consent answer",
    "kind.confidentiality.consent_request": "Consent request",
    "kind.confidentiality.disclosure_notice": "Disclosure notice",
    "kind.delivery.closure": "Controlled delivery closed",
    "kind.delivery.consent": "Controlled delivery consent",
    "kind.delivery.decline": "Controlled delivery declined",
    "kind.delivery.handover": "Custody hand-over",
    "kind.delivery.interception": "Interception decision",
    "kind.delivery.proposal": "Controlled delivery proposal",
    "kind.info.authorized_parties": "Authorized producers, dealers, importers and exporters",
    "kind.info.concealment_methods": "Concealment methods",
    "kind.info.legislative_measures": "Legislative measures",
    "kind.info.money_laundering": "Money laundering techniques",
    "kind.info.scientific_technological": "Scientific and technological information",
    "kind.info.trafficking_routes": "Trafficking routes",
    "kind.protocol.receipt": "Delivery receipt",
    "kind.protocol.rejection": "Rejection",
    "kind.tracing.acknowledgement": "Tracing acknowledgement",
    "kind.tracing.overdue": "Tracing answer overdue",
    "kind.tracing.reminder": "Tracing reminder",
    "kind.tracing.request": "Tracing request",
    "kind.tracing.response": "Tracing response",
    "kind.transfer.discrepancy": "Transfer discrepancy",
    "kind.transfer.dispatch": "Transfer dispatched",
    "kind.transfer.import_confirmation": "Import confirmation",
    "kind.transfer.notice": "Transfer notice",
    "kind.transfer.receipt_confirmation": "Receipt confirmation",
    "kind.transfer.receipt_overdue": "Transfer receipt overdue",
    "kind.transfer.transit_authorization": "Transit authorization",
    # -- deadlines --
    "tracing.answer_owed": "tracing answer owed to {parties}",
    "tracing.answer_awaited": "tracing answer awaited from {parties}",
    "transfer.confirmation_awaited": "confirmation awaited from {parties}",
    "transfer.receipt_awaited": "receipt confirmation awaited from {parties}",
    "delivery.consent_awaited": "consent awaited from {parties}",
    # -- words of the tables and views --
    "col.created": "created (UTC)",
    "col.from_to": "from/to",
    "col.title": "title",
    "col.kind": "kind",
    "col.handling": "handling",
    "col.case": "case",
    "col.new": "",
    "col.id": "id",
    "col.recipient": "recipient",
    "col.status": "status",
    "col.at": "at",
    "col.attempts": "attempts",
    "col.why": "why",
    "col.due": "due (UTC)",
    "col.what": "what",
    "col.reference": "reference",
    "col.family": "procedure",
    "col.request": "request",
    "col.asked": "asked",
    "col.priority": "priority",
    "col.filed": "filed",
    "col.outcome": "outcome",
    "col.reminders": "reminders",
    "col.state_asked": "state asked",
    "col.received": "received",
    "col.answered": "answered",
    "col.median_h": "median h",
    "col.p90_h": "p90 h",
    "col.on_time": "on time",
    "col.outcomes": "outcomes",
    "col.transfer": "transfer",
    "col.exporter": "exporter",
    "col.importer": "importer",
    "col.transit": "transit",
    "col.stage": "stage",
    "col.arrival": "arrival",
    "col.detail": "",
    "col.operation": "operation",
    "col.proposer": "proposer",
    "col.participants": "participants",
    "col.phase": "phase",
    "col.custody": "custody",
    "trace.stats_title": "tracing requests by state asked (Art. XIII.3: prompt and accurate "
    "responses)",
    "transfer.waiting_for": "waiting for {states}",
    "transfer.refused_by": "refused by {state}",
    "transfer.line_differs": "line {line}: {dispatched} dispatched, {received} received",
    "transfer.receipt_overdue": "RECEIPT OVERDUE",
    "operation.header": "operation {operation_id} proposed by {proposer}: {phase}",
    "operation.route": "route {route}; custody {custody}",
    "operation.awaiting": "awaiting consent of {states}",
    "word.new": "new",
    "word.overdue": "OVERDUE",
    "view.header": "{title} ({kind})  {msg_id}",
    "view.route": "from {sender} to {recipients}; created {created_at}",
    "view.case": "case {case_id}",
    "view.in_reply_to": "in reply to {in_reply_to}",
    "view.codes": "codes:",
    "view.body": "body:",
}


def text(code: str, **params: Any) -> str:
    """The English string of ``code`` with its parameters (the code itself if none is known)."""
    template = TEXT.get(code)
    if template is None:
        return code + (f" {params}" if params else "")
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


def headers(*names: str) -> list[str]:
    """A table's column headers, by their codes (``col.<name>``)."""
    return [text(f"col.{n}") for n in names]


def title(kind: str) -> str:
    return TEXT.get(f"kind.{kind}", kind)


def option(field: str) -> str:
    """How a person typed the option a command field came from."""
    return OPTIONS.get(field, "--" + field.replace("_", "-"))


def expected(fmt: str, **params: Any) -> str:
    choices = params.get("choices")
    if isinstance(choices, list | tuple):
        params = {**params, "choices": ", ".join(str(c) for c in choices)}
    return FORMATS.get(fmt, fmt).format(**params) if fmt in FORMATS else fmt


def error(code: str, params: dict[str, Any]) -> str:
    """One line for a person: what went wrong, naming the option as typed and what is expected."""
    p = dict(params)
    if "field" in p:
        p["option"] = option(str(p["field"]))
    if code == "value.invalid" or code == "officer.incomplete":
        p["expected"] = expected(str(p.get("expected", "value")), **p)
    if code == "officer.missing":
        p["option"], p["expected"] = "--officer", FORMATS["officer"]
    if code == "field.required":
        p["when"] = f" when {p['when']}" if p.get("when") else ""
    if code == "field.invalid":
        p["problem"] = text(f"field.{p.get('problem')}")
    if code == "body.invalid":
        p["problems"] = "; ".join(_problem(q) for q in p.get("problems", []))
    if code in ("body.not_filled_in",):
        p["fields"] = ", ".join(p.get("fields", []))
    if code == "attachment.not_found":
        p["names"] = ", ".join(p.get("names", [])) or "none"
    if code == "attachment.not_here":
        p["state"] = text(f"attachment.state.{p.get('state')}", reason=p.get("reason"))
    if code == "rebuild.refused":
        p["reasons"] = ", ".join(f"{n} {r}" for r, n in sorted(p.get("reasons", {}).items()))
    if code == "message.ambiguous_id":
        p["candidates"] = ", ".join(p.get("candidates", []))
    if code in ("recipient.off_network",):
        p["states"] = ", ".join(p.get("states", []))
    if code == "recipient.unknown":
        p["problem"] = "" if p.get("problem") in (None, "not_in_directory") else f": {p['problem']}"
    if code == "procedure.step_refused":
        p["reason"] = refusal(str(p.get("reason")), p)
    if code == "procedure.not_found":
        p["owner"] = f" of {p['owner']}" if p.get("owner") else ""
        p["what"] = str(p.get("what", "")).replace("_", " ")
    if code == "procedure.ambiguous":
        p["owners"], p["option"] = ", ".join(p.get("owners", [])), option(str(p["option"]))
    return text(code, **p)


def refusal(reason: str, params: dict[str, Any]) -> str:
    """The English line of a workflow's refusal code (the catalogs' ``refusal.<code>`` message,
    shared with the console, which shows it translated)."""
    template = MESSAGES.get(f"refusal.{reason}")
    if template is None:
        return reason
    try:
        return template % params
    except (KeyError, TypeError, ValueError):
        return template


def _problem(q: dict[str, Any]) -> str:
    what = text(f"problem.{q.get('problem')}", detail=q.get("detail", ""))
    if what.startswith("problem."):
        what = str(q.get("problem", "")).replace("_", " ")
    return f"{q.get('field')}: {what}"
