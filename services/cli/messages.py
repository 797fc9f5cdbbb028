"""Every line the officer's commands show, by code: the application layer's error and notice
codes, the words of the tables and views, in the reader's language (es, en, fr, pt).

Each value is a gettext msgid (English) and a ``str.format`` string over the code's parameters,
whose ``{name}`` placeholders every translation keeps. Where the console already has a message for
the same code, the command shows that one: kind titles (:mod:`services.i18n.kinds`), the
explanations of handling and evaluation codes (the console's labels), the workflows' refusals and
the codes whose line names no option (:data:`services.i18n.codes.MESSAGES`).

The language is chosen once per command (:func:`choose`: ``--lang``, else ``LC_ALL``,
``LC_MESSAGES``, ``LANG``) and set with :func:`use`; unset, it is English.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from babel.numbers import format_percent

from services import i18n
from services.i18n import N_, kinds, values
from services.i18n.codes import MESSAGES

_LANGUAGE: ContextVar[str] = ContextVar("cli_language", default=i18n.DEFAULT_LANGUAGE)


def choose(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The command's language: ``--lang`` wherever it is on the command line (so that ``--help``
    and argparse's own mistakes are in it too), else the locale variables, else English."""
    lang = None
    for i, word in enumerate(argv):
        if word == "--":
            break
        if word == "--lang" and i + 1 < len(argv):
            lang = argv[i + 1]
        elif word.startswith("--lang="):
            lang = word.partition("=")[2]
    return i18n.from_environment(lang if lang in i18n.LANGUAGES else None, env)


def use(language: str) -> None:
    """Show every later line in ``language`` (one of :data:`services.i18n.LANGUAGES`)."""
    _LANGUAGE.set(language if language in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE)


def language() -> str:
    """The language lines are shown in."""
    return _LANGUAGE.get()


def number(value: float | int) -> str:
    """A number as a reader of the command's language writes it (Babel)."""
    return i18n.format_number(value, language())


def percent(share: float) -> str:
    """A share (0.83) as a percentage in the command's language (Babel: 83 %, 83%)."""
    return format_percent(share, locale=i18n.babel_locale(language()))


def t(message: str) -> str:
    """``message`` (a msgid marked with ``N_``) in the command's language."""
    return i18n.gettext_for(language(), message) if message else message


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
    "date": N_("a date, YYYY-MM-DD"),
    "datetime": N_("a date YYYY-MM-DD or an RFC 3339 time such as 2026-12-01T09:30:00Z"),
    "integer": N_("a whole number"),
    "one_of": N_("one of {choices}"),
    "line_quantity": N_("LINE=QUANTITY, e.g. 1=40"),
    "line_text": N_("LINE=TEXT, e.g. 2=crate damaged"),
    "officer": N_('"Name|Position|Agency", e.g. "Ana Ruiz|Analyst|FGR"'),
    "json_file": N_("a file holding a JSON list"),
    "value": N_("a valid value"),
    # an expiry at or before sealing: every recipient would reject the message as expired
    "future": N_("a time after now (the message would arrive expired)"),
}

TEXT: dict[str, str] = {
    # -- errors (services/node/application/errors.py) --
    "node.passphrase_unset": N_("the key file's passphrase variable {variable} is not set"),
    "node.not_a_home": N_("{home} is not a node home: run `cifta node init` first"),
    "node.bad_settings": N_("{home}/node.json or CIFTA_NODE_*: {field}: {problem}"),
    # node.keys_unreadable, by its reason (an unknown one: the console's line for the code)
    "node.keys_unreadable.missing": N_(
        "{file} is not there: give the home of this state's node (`cifta node init` makes one), "
        "or restore the key file from the backup"
    ),
    "node.keys_unreadable.unreadable": N_(
        "{file} cannot be read by this user: run the command as the node's owner"
    ),
    "node.keys_unreadable.exposed": N_(
        "{file} may be read by other users (mode {mode}): it is not used; make it the owner's "
        "alone (chmod 600)"
    ),
    "node.keys_unreadable.passphrase_required": N_(
        "{file} is sealed with a passphrase: name the variable that holds it as passphrase_env "
        "in node.json"
    ),
    "node.keys_unreadable.wrong_passphrase": N_(
        "{file} does not open with the passphrase given: check the passphrase variable, or "
        "restore the key file from the backup"
    ),
    "node.keys_unreadable.damaged": N_(
        "{file} is damaged or not a node's key file: restore it from the backup"
    ),
    "node.directory_unreadable.root": N_(
        "the pinned directory root key {file} cannot be read: restore it from the onboarding bundle"
    ),
    "node.directory_unreadable.cache": N_(
        "the directory cache {file} cannot be read, or an entry in it does not verify against "
        "the pinned root key: restore it from the backup"
    ),
    "node.clock_off": N_(
        "this node's clock is {offset} s ahead of the hub's (measured {measured_at}; tolerance "
        "{tolerance_s} s): set it right (NTP) before sending, other states would refuse what it "
        "dates"
    ),
    "node.clock_off_behind": N_(
        "this node's clock is {offset} s behind the hub's (measured {measured_at}; tolerance "
        "{tolerance_s} s): set it right (NTP) before sending, other states would refuse what it "
        "dates"
    ),
    "officer.missing": N_(
        "{option} is required: {expected} (or set CIFTA_OFFICER); every action is recorded "
        "under the officer's name"
    ),
    "officer.incomplete": N_("{option} {value!r}: expected {expected}"),
    "message.not_found": N_("no message {msg_id}"),
    "message.ambiguous_id": N_("{prefix} matches several messages: {candidates}; type more of it"),
    "message.id_too_short": N_("{prefix!r}: type at least {minimum} characters of the message id"),
    "message.not_sent": N_("{msg_id} was received, not sent: `cifta show` opens it"),
    "kind.unknown": N_("unknown kind {kind!r}; `cifta template --list` shows them"),
    "body.not_filled_in": N_(
        "the {kind} body still has template placeholders to fill in: {fields}"
    ),
    "body.invalid": N_("the body is not a valid {kind}: {problems}"),
    "body.mismatch": N_("the body's {field} is {found}, not {expected}"),
    "value.invalid": N_("{option} {value!r}: expected {expected}"),
    "field.required": N_("{option} is required"),
    "field.required_when": N_("{option} is required when {when}"),
    "field.invalid": "{option}: {problem}",
    "recipient.none": N_("no recipient: name the states with --to"),
    "recipient.self": N_("{party} is this node: a node does not send to itself"),
    "recipient.unknown": N_("{party} is not on the network (not in the directory){problem}"),
    "recipient.off_network": N_(
        "{states} (country of manufacture or of last import) is not on the network: name the "
        "state to ask with --to"
    ),
    "compose.refused": "{problem}",
    "procedure.step_refused": "{kind}: {reason}",
    "procedure.not_found": N_("no {what} {id}"),
    "procedure.not_found_of": N_("no {what} {id} of {owner}"),
    "procedure.ambiguous": N_("{what} {id} exists from several states ({owners}): pass {option}"),
    "article12.refused": N_("{rule}. To proceed: {remedy}"),
    "rebuild.refused": N_(
        "casework not rebuilt: {count} message(s) this node sent cannot be opened ({reasons}), "
        "and the procedures they started would be lost. Nothing was changed; restore the key "
        "file that holds their keys (a keys.replaced-*.json, a backup) and run it again"
    ),
    "attachment.no_file": N_("{option} {path}: no such file"),
    "attachment.duplicate": N_(
        "{option} {path}: another file attached is named {name!r} too; a message's attachments "
        "need distinct names"
    ),
    "attachment.unreadable": N_(
        "{option} {path}: cannot be read whole ({problem}); attach a regular file that does not "
        "change while it is sent"
    ),
    "attachment.refused": "{reason}: {detail}",
    "attachment.invalid": N_("the attachments cannot be sent: {problem}"),
    "attachment.not_found": N_("message {msg_id} has no attachment {name!r} (it has: {names})"),
    "attachment.not_here": N_(
        "{name}: {state} (the running node fetches the attachments of the messages it stores)"
    ),
    "attachment.out_exists": N_("{option} {path} exists; pass --force to replace it"),
    "attachments.sent": N_("with {names}"),
    "attachment.state.held": N_("held"),
    "attachment.state.pending": N_("not fetched yet"),
    "attachment.state.refused": N_("refused: {reason}"),
    # problems inside a body (pydantic's error types)
    "problem.missing": N_("missing"),
    "problem.extra_forbidden": N_("not a field of this kind"),
    "problem.string_too_short": N_("empty"),
    "problem.string_too_long": N_("too long"),
    "problem.string_pattern_mismatch": N_("not in the expected form"),
    "problem.enum": N_("not one of the allowed codes"),
    "problem.literal_error": N_("not one of the allowed values"),
    "problem.date_from_datetime_parsing": N_("not a date (YYYY-MM-DD)"),
    "problem.datetime_from_date_parsing": N_("not a time (RFC 3339)"),
    "problem.timezone_aware": N_("a time needs its offset (Z or +hh:mm)"),
    "problem.int_parsing": N_("not a whole number"),
    "problem.value_error": "{detail}",
    "field.only_with_h3": N_("only with --handling H3 (the restriction of an H3 message)"),
    # -- notices --
    "queued": N_("queued {kind} {msg_id} for {recipients}"),
    "preview": N_(
        "preview (nothing sealed, nothing queued): {title} from {sender} to {recipients}"
    ),
    "tracing.due": N_("due {due_at} UTC ({priority})"),
    "tracing.not_asked_off_network": N_("not on the network, not asked: {states}"),
    "transfer.discrepancy_reported": N_("quantities differ: discrepancy report queued"),
    "transfer.received_as_dispatched": N_("quantities as dispatched"),
    "delivery.consent_asked": N_("operation {operation_id}: consent asked of {states}"),
    "disclosure.originator_told": N_("the originator is told before the disclosure (Art. XII)"),
    "forward.copy_of": N_("forwarded copy of {msg_id}"),
    "opened_by": N_("opened by {officer} (recorded)"),
    "exported": N_("exported {kind} {msg_id} to {path} (0600); recorded in the audit log"),
    "rebuilt": N_(
        "procedures rebuilt from {applied} messages ({skipped} refused again, not applied)"
    ),
    "broken_pipe": "",
    # -- explanations of codes a reader meets (the others are the console's) --
    "handling.H3": N_("H3: other restrictions, stated in the message: {note}"),
    # -- deadlines --
    "tracing.answer_owed": N_("tracing answer owed to {parties}"),
    "tracing.answer_awaited": N_("tracing answer awaited from {parties}"),
    "transfer.confirmation_awaited": N_("confirmation awaited from {parties}"),
    "transfer.receipt_awaited": N_("receipt confirmation awaited from {parties}"),
    "delivery.consent_awaited": N_("consent awaited from {parties}"),
    # -- words of the tables and views --
    "col.created": N_("created (UTC)"),
    "col.from_to": N_("from/to"),
    "col.title": N_("title"),
    "col.kind": N_("kind"),
    "col.handling": N_("handling"),
    "col.case": N_("case"),
    "col.new": "",
    "col.id": N_("id"),
    "col.recipient": N_("recipient"),
    "col.status": N_("status"),
    "col.at": N_("at"),
    "col.attempts": N_("attempts"),
    "col.why": N_("why"),
    "col.due": N_("due (UTC)"),
    "col.what": N_("what"),
    "col.reference": N_("reference"),
    "col.family": N_("procedure"),
    "col.request": N_("request"),
    "col.asked": N_("asked"),
    "col.priority": N_("priority"),
    "col.filed": N_("filed (UTC)"),
    "col.outcome": N_("outcome"),
    "col.reminders": N_("reminders"),
    "col.state_asked": N_("state asked"),
    "col.received": N_("received"),
    "col.answered": N_("answered"),
    "col.median_h": N_("median h"),
    "col.p90_h": N_("p90 h"),
    "col.on_time": N_("on time"),
    "col.outcomes": N_("outcomes"),
    "col.transfer": N_("transfer"),
    "col.exporter": N_("exporter"),
    "col.importer": N_("importer"),
    "col.transit": N_("transit"),
    "col.stage": N_("stage"),
    "col.arrival": N_("arrival"),
    "col.detail": "",
    "col.operation": N_("operation"),
    "col.proposer": N_("proposer"),
    "col.participants": N_("participants"),
    "col.phase": N_("phase"),
    "col.custody": N_("custody"),
    "trace.stats_title": N_(
        "tracing requests by state asked (Art. XIII.3: prompt and accurate responses)"
    ),
    "transfer.waiting_for": N_("waiting for {states}"),
    "transfer.refused_by": N_("refused by {state}"),
    "transfer.line_differs": N_("line {line}: {dispatched} dispatched, {received} received"),
    "transfer.receipt_overdue": N_("RECEIPT OVERDUE"),
    "operation.header": N_("operation {operation_id} proposed by {proposer}: {phase}"),
    "operation.route": N_("route {route}; custody {custody}"),
    "operation.awaiting": N_("awaiting consent of {states}"),
    "word.new": N_("new"),
    "word.none": N_("none"),
    "family.tracing": N_("tracing"),
    "family.transfer": N_("transfer"),
    "family.delivery": N_("controlled delivery"),
    "what.transfer": N_("transfer"),
    "what.transfer_notice": N_("transfer notice"),
    "what.operation": N_("operation"),
    "word.overdue": N_("OVERDUE"),
    "view.header": "{title} ({kind})  {msg_id}",
    "view.route": N_("from {sender} to {recipients}; created {created_at}"),
    "view.case": N_("case {case_id}"),
    "view.in_reply_to": N_("in reply to {in_reply_to}"),
    "view.codes": N_("codes:"),
    "view.body": N_("body:"),
    # what an option with a fixed set of codes takes, each code with its name
    "choices": N_("values: {choices}"),
}


def text(code: str, **params: Any) -> str:
    """The line of ``code`` in the command's language, with its parameters: the CLI's own, else
    the console's explanation or message for the code, else the code itself."""
    template = TEXT.get(code)
    if template is None:
        return _shared(code, params)
    try:
        return t(template).format(**params)
    except (KeyError, IndexError, ValueError):
        return t(template)


def _shared(code: str, params: dict[str, Any]) -> str:
    from services.console.officer.labels import EXPLANATIONS

    if code in EXPLANATIONS:
        return t(EXPLANATIONS[code])
    if code in MESSAGES:
        return i18n.translate(code, params, language()).rstrip(".")
    return code + (f" {params}" if params else "")


def headers(*names: str) -> list[str]:
    """A table's column headers, by their codes (``col.<name>``)."""
    return [text(f"col.{n}") for n in names]


def value(code: str | None) -> str:
    """A code value (``urgent``, ``not_found``, ``items_removed``) named in the command's
    language, as the console names it; ``--json`` keeps the code."""
    return values.value(code, language()) if code else ""


def status(code: str) -> str:
    """Where a procedure stands (``filed``, ``active``...) in the command's language."""
    return values.status(code, language())


def delivery_state(code: str) -> str:
    """Where a message stands with a recipient (``pending``, ``delivered``...)."""
    return values.delivery_state(code, language())


def rejection(code: str) -> str:
    """Why a recipient refused a message, in the command's language."""
    return values.rejection(code, language())


def timeline(code: str, params: Mapping[str, object]) -> str:
    """A controlled delivery's timeline entry, its decision or outcome named."""
    return values.timeline(code, params, language())


def choices(help_text: str | None, codes: Iterable[str]) -> str:
    """An option's help followed by the codes it takes, each with its name in the command's
    language (the option itself takes the codes)."""
    line = text("choices", choices=values.choices(codes, language()))
    return f"{help_text}; {line}" if help_text else line


def title(kind: str) -> str:
    """The title of ``kind`` in the command's language, as the console names it."""
    return t(kinds.title(kind))


def option(field: str) -> str:
    """How a person typed the option a command field came from."""
    return OPTIONS.get(field, "--" + field.replace("_", "-"))


def expected(fmt: str, **params: Any) -> str:
    choices = params.get("choices")
    if isinstance(choices, list | tuple):
        params = {**params, "choices": ", ".join(str(c) for c in choices)}
    return t(FORMATS[fmt]).format(**params) if fmt in FORMATS else fmt


def error(code: str, params: dict[str, Any]) -> str:
    """One line for a person: what went wrong, naming the option as typed and what is expected."""
    p = dict(params)
    if "field" in p:
        p["option"] = option(str(p["field"]))
    if code == "value.invalid" or code == "officer.incomplete":
        p["expected"] = expected(str(p.get("expected", "value")), **p)
    if code == "officer.missing":
        p["option"], p["expected"] = "--officer", t(FORMATS["officer"])
    if code == "field.required" and p.get("when"):
        code = "field.required_when"
    if code in ("node.keys_unreadable", "node.directory_unreadable"):
        code = f"{code}.{p.get('reason')}" if f"{code}.{p.get('reason')}" in TEXT else code
    if code == "node.clock_off":
        offset = int(p.get("offset_s", 0))
        p["offset"] = abs(offset)
        code = "node.clock_off" if offset > 0 else "node.clock_off_behind"
    if code == "field.invalid":
        p["problem"] = text(f"field.{p.get('problem')}")
    if code == "body.invalid":
        p["problems"] = "; ".join(_problem(q) for q in p.get("problems", []))
    if code in ("body.not_filled_in",):
        p["fields"] = ", ".join(p.get("fields", []))
    if code == "attachment.not_found":
        p["names"] = ", ".join(p.get("names", [])) or text("word.none")
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
    if code == "article12.refused":
        p.update(i18n.article12_refusal(p, language()))
    if code in ("procedure.not_found", "procedure.ambiguous"):
        what = str(p.get("what", ""))
        p["what"] = text(f"what.{what}") if f"what.{what}" in TEXT else what.replace("_", " ")
    if code == "procedure.not_found" and p.get("owner"):
        code = "procedure.not_found_of"
    if code == "procedure.ambiguous":
        p["owners"], p["option"] = ", ".join(p.get("owners", [])), option(str(p["option"]))
    return text(code, **p)


def refusal(reason: str, params: dict[str, Any]) -> str:
    """A workflow's refusal code as the console shows it (the catalogs' ``refusal.<code>``)."""
    if f"refusal.{reason}" not in MESSAGES:
        return reason
    return i18n.translate(f"refusal.{reason}", params, language())


def _problem(q: dict[str, Any]) -> str:
    what = text(f"problem.{q.get('problem')}", detail=q.get("detail", ""))
    if what.startswith("problem."):
        what = str(q.get("problem", "")).replace("_", " ")
    return f"{q.get('field')}: {what}"
