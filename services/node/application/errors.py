"""The one error every command and query of the application layer raises: a code from
:data:`ErrorCode` plus parameters, never prose, so that each front end renders it in the reader's
language (the CLI's English strings are in ``services/cli/messages.py``; the console's catalogs
take the same codes).

The catalogue, with the parameters each code carries:

- ``node.no_home``: no node home given. ``node.not_a_home`` {home}. ``node.bad_settings``
  {home, field, problem}. ``node.passphrase_unset`` {variable}. ``node.keys_unreadable``
  {reason: missing|unreadable|exposed|passphrase_required|wrong_passphrase|damaged, file,
  mode?}.
  ``node.directory_unreadable`` {reason: root|cache, file}. ``node.clock_off`` {offset_s
  (positive: ahead of the hub), measured_at, tolerance_s}.
- ``officer.missing``: a recorded action without the officer's identity.
  ``officer.incomplete`` {missing: [name|position|agency]}.
- ``message.not_found`` {msg_id}. ``message.ambiguous_id`` {prefix, candidates}.
  ``message.id_too_short`` {prefix, minimum}. ``message.not_received`` {msg_id}.
  ``message.not_sent`` {msg_id}. ``message.unreadable`` {msg_id, reason}.
- ``kind.unknown`` {kind}. ``kind.protocol`` {kind}: receipts and rejections are the node's.
- ``body.not_json``. ``body.not_filled_in`` {kind, fields}: a template's placeholders left.
  ``body.invalid`` {kind, problems: [{field, problem, input?}]}. ``body.mismatch`` {field,
  expected, found}: the body says otherwise than the command.
- ``value.invalid`` {field, value, expected}: an option or form field (``expected`` is a format
  code: ``date``, ``datetime``, ``line_quantity``, ``states``, ``json_file``...).
- ``field.required`` {field, when}. ``field.invalid`` {field, problem, input?}.
- ``recipient.none``. ``recipient.self`` {party}. ``recipient.unknown`` {party, problem}.
  ``recipient.off_network`` {states}: none of the states to ask is on the network.
- ``compose.refused`` {problem}: sealing refused (an expiry in the past, say).
- ``procedure.step_refused`` {kind, reason, ...}: the procedure does not allow this step now;
  ``reason`` is the workflow's refusal code (``RefusalCode`` in
  ``services/node/workflows/errors.py``, each citing its article), its parameters beside it;
  front ends render ``reason`` as the message ``refusal.<reason>`` with those parameters.
- ``procedure.not_found`` {what, id, owner?}. ``procedure.ambiguous`` {what, id, owners,
  option}. ``procedure.not_a_party`` {what, id, party}.
- ``article12.refused`` {rule, remedy, originator, states?, use?}: Art. XII forbids this
  forwarding or export for now; ``rule`` (``h2_onward``, ``h1_judicial``, ``confidential``,
  ``nothing_to_forward``) and ``remedy`` (``ask_sharing`` {states}, ``ask_judicial``,
  ``ask_use`` {use}, ``send_notice``, ``originator_has_it``) are codes
  (``Rule``/``Remedy`` in services/node/workflows/confidentiality.py); front ends word them
  as the messages ``article12.rule.<rule>`` and ``article12.remedy.<remedy>``.
- ``audit.unreachable`` {hub_url}: the audit service did not answer. ``audit.refused``
  {problem}. ``audit.checkpoint_invalid`` {problem}: the checkpoint's signature does not verify.
- ``attachment.no_file`` {field, path}. ``attachment.duplicate`` {field, name, path}: two files
  of one message with the same name (or the same file twice); nothing was sealed.
  ``attachment.unreadable`` {field, path, problem}: a file could not be read whole (it changed
  size while sealed, or the system refused it); nothing was sealed or queued.
  ``attachment.invalid`` {problem}: the attachments do not make a valid body (too many).
  ``attachment.refused`` {reason, detail}: the file or
  this node's copy refused with its reason code (``attachment_too_large``, ...).
  ``attachment.upload_incomplete`` {problem}: the hub did not store it all; the same command
  resumes. ``attachment.recipient_backlog`` {recipient, held_mib, share_mib}: nothing was stored;
  the recipient has not confirmed earlier files, and these would pass its share of this node's
  room at the hub. ``attachment.hub_unreachable`` {hub_url, problem}: nothing was queued.
  ``attachment.not_found`` {msg_id, name, names}. ``attachment.not_here`` {name, state, reason}.
  ``attachment.out_exists`` {field, path}. ``forward.attachments_not_held`` {msg_id, missing,
  count}: ``missing`` of the message's ``count`` files (counted, not named: nothing was opened)
  are not held intact by this node (never fetched, refused, or lost), so they cannot be stored
  at the hub for the new states; nothing was stored or queued.
  ``attachment.too_large`` {name, limit}: one file over the node's cap.
- ``rebuild.refused`` {count, reasons}. ``export.exists`` {path}. ``io.failed`` {path, problem}.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

ErrorCode = Literal[
    "node.no_home",
    "node.not_a_home",
    "node.bad_settings",
    "node.passphrase_unset",
    "node.keys_unreadable",
    "node.directory_unreadable",
    "node.clock_off",
    "officer.missing",
    "officer.incomplete",
    "message.not_found",
    "message.ambiguous_id",
    "message.id_too_short",
    "message.not_received",
    "message.not_sent",
    "message.unreadable",
    "kind.unknown",
    "kind.protocol",
    "body.not_json",
    "body.not_filled_in",
    "body.invalid",
    "body.mismatch",
    "value.invalid",
    "field.required",
    "field.invalid",
    "recipient.none",
    "recipient.self",
    "recipient.unknown",
    "recipient.off_network",
    "compose.refused",
    "procedure.step_refused",
    "procedure.not_found",
    "procedure.ambiguous",
    "procedure.not_a_party",
    "article12.refused",
    "audit.unreachable",
    "audit.refused",
    "audit.checkpoint_invalid",
    "attachment.no_file",
    "attachment.duplicate",
    "attachment.invalid",
    "attachment.unreadable",
    "attachment.refused",
    "attachment.upload_incomplete",
    "attachment.recipient_backlog",
    "attachment.hub_unreachable",
    "attachment.not_found",
    "attachment.not_here",
    "attachment.out_exists",
    "attachment.too_large",
    "forward.attachments_not_held",
    "rebuild.refused",
    "export.exists",
    "io.failed",
]

#: Every code, in the order above (front ends check their catalogs against it).
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)


class ApplicationError(Exception):
    """A command or query could not do what was asked: ``code`` says why, ``params`` with what."""

    def __init__(self, code: ErrorCode, **params: Any) -> None:
        super().__init__(code, params)
        self.code: ErrorCode = code
        self.params: dict[str, Any] = params

    def to_json(self) -> dict[str, Any]:
        """The error as front ends pass it on (``--json``, the console's API)."""
        return {"code": self.code, "params": self.params}

    def __str__(self) -> str:  # for logs and tracebacks only; people see a rendering
        return f"{self.code} {self.params}"
