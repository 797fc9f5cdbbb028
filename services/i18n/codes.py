"""The codes that cross the application layer and the console, each with its English message.

A front end never shows a library's text: it shows ``translate(code, params, language)``. The
messages are gettext msgids (extracted from here by ``make catalogs``), so every code has its
text in the four languages; placeholders are ``%(name)s`` and must be the same in every language
(tests/unit/test_catalogs.py checks both).
"""

from __future__ import annotations

from typing import Final

from services.i18n import N_

MESSAGES: Final[dict[str, str]] = {
    # sign-in and sessions
    # the same answer whatever was wrong, a lockout included: it names no login that exists
    "login.refused": N_(
        "Sign-in refused: the name, password or code is wrong, or the account is locked "
        "(%(failures)s failed attempts in a row lock it for %(minutes)s minutes)."
    ),
    "login.locked": N_(
        "Too many failed attempts: this account is locked until %(until)s. "
        "Ask the node administrator if you need it sooner."
    ),
    "login.rate_limited": N_("Too many sign-in attempts from this address: wait a few minutes."),
    "login.totp_required": N_("Enter the six-digit code from your authenticator app."),
    "login.totp_wrong": N_("The code %(typed)s is not the current one: expected six digits."),
    "session.expired": N_("Your session has ended: sign in again."),
    "accounts.totp_key_missing": N_(
        "%(file)s is missing while the store holds second factors sealed with it: restore it "
        "from the backup, or reset every officer's password."
    ),
    "accounts.totp_key_exposed": N_(
        "%(file)s may be read by other users (mode %(mode)s): it is not used. Make it the "
        "owner's alone (chmod 600), and reset the officers' passwords if it may have been copied."
    ),
    "accounts.totp_key_foreign": N_(
        "%(file)s belongs to another user (uid %(owner)s): it is not used. Run the console and "
        "the officer commands as the user who owns the node's store."
    ),
    "accounts.totp_key_damaged": N_(
        "%(file)s is not a key file of 32 bytes (or is a link): it is not used. Restore it from "
        "the backup."
    ),
    "key.refused": N_(
        "The security key's answer was not accepted: use a key enrolled for this account."
    ),
    "key.expired": N_("The request for your security key has expired: try again."),
    "key.address_host": N_(
        "Security keys need the console's host name, not the address %(host)s: open it as "
        "localhost on this machine, or by the name of its certificate."
    ),
    "key.origin_unset": N_(
        "Security keys are not available under %(host)s: the console was started without "
        "--public-origin, the name it is served under (without it, only localhost on this "
        "machine)."
    ),
    "key.none": N_("No security key is enrolled for this account: use the authenticator code."),
    "key.too_many": N_("At most %(max)s security keys per officer: ask to remove one first."),
    "request.too_large": N_("The files sent together exceed %(limit)s: send fewer."),
    "csrf.invalid": N_(
        "This form has expired or did not come from this console: reload the page and try again."
    ),
    "forbidden.role": N_("This page needs the role %(role)s."),
    "not_found": N_("Nothing here: %(what)s was not found."),
    # officer accounts
    "officer.exists": N_("An officer with the login %(login)s already exists."),
    "officer.unknown": N_("No officer with the login %(login)s."),
    "officer.login_format": N_(
        "The login %(typed)s is not valid: expected 3 to 32 lowercase letters, digits, '.', '-' "
        "or '_'."
    ),
    "officer.role_unknown": N_(
        "The role %(typed)s is not known: expected officer, supervisor or admin."
    ),
    "officer.language_unknown": N_(
        "The language %(typed)s is not offered: expected es, en, fr or pt."
    ),
    "officer.field_required": N_("%(field)s is required."),
    "officer.password_short": N_(
        "The password is too short: expected at least %(min)s characters."
    ),
    "officer.disabled": N_("The officer %(login)s is disabled."),
    "officer.added": N_("Officer %(login)s added (%(role)s)."),
    "officer.password_reset": N_(
        "Password of %(login)s reset; the second factor must be enrolled again."
    ),
    "officer.keys_removed": N_("Security keys of %(login)s removed: %(count)s."),
    "officer.disabled_now": N_("Officer %(login)s disabled; their sessions have ended."),
    "officer.store_missing": N_("%(home)s is not a node home: run `cifta node init` first."),
    # forms
    "form.required": N_("This field is required."),
    "form.rejected": N_("This value is not accepted (%(problem)s)."),
    "form.date_format": N_("%(typed)s is not a date: expected YYYY-MM-DD."),
    "form.invalid": N_("%(field)s: %(typed)s is not accepted: %(expected)s."),
    # the node's application layer (services/node/application/errors.py)
    "node.no_home": N_("No node home given: pass --home or set CIFTA_NODE_HOME."),
    "node.not_a_home": N_("%(home)s is not a node home."),
    "node.bad_settings": N_("The node's settings are wrong at %(field)s (%(problem)s)."),
    "node.passphrase_unset": N_("The key file's passphrase variable %(variable)s is not set."),
    "node.keys_unreadable": N_("The node's keys cannot be read."),
    "node.directory_unreadable": N_("The node's directory cannot be read."),
    "node.clock_off": N_("This node's clock is off: messages cannot be dated now."),
    "officer.missing": N_("Who is acting? Name, position and agency are required."),
    "officer.incomplete": N_("The officer's identity is incomplete."),
    "message.not_found": N_("No message %(msg_id)s."),
    "message.ambiguous_id": N_("%(prefix)s matches several messages: type more of its id."),
    "message.id_too_short": N_(
        "%(prefix)s is too short: type at least %(minimum)s characters of the id."
    ),
    "message.not_received": N_("Message %(msg_id)s was not received by this node."),
    "message.not_sent": N_("Message %(msg_id)s was not sent by this node."),
    "message.unreadable": N_("Message %(msg_id)s cannot be opened (%(reason)s)."),
    "kind.unknown": N_("%(kind)s is not a kind of message."),
    "kind.protocol": N_("Receipts and rejections are sent by the node itself."),
    "body.not_json": N_("The message is not valid JSON."),
    "body.not_filled_in": N_("Some fields still hold the template's placeholder."),
    "body.invalid": N_("The message is not complete: see the fields marked below."),
    "body.mismatch": N_("%(field)s says %(found)s where %(expected)s was expected."),
    "value.invalid": N_("%(field)s: %(value)s is not accepted (expected: %(expected)s)."),
    "field.required": N_("%(field)s is required."),
    "field.invalid": N_("%(field)s is not accepted (%(problem)s)."),
    "recipient.none": N_("Choose at least one recipient state."),
    "recipient.self": N_("%(party)s is this node's own state: choose another recipient."),
    "recipient.unknown": N_("%(party)s is not in the network's directory."),
    "recipient.off_network": N_("None of these states is on the network: %(states)s."),
    "compose.refused": N_("The message cannot be sealed (%(problem)s)."),
    "procedure.step_refused": N_("The procedure does not allow this step now (%(reason)s)."),
    "procedure.not_found": N_("Not found: %(id)s."),
    "procedure.ambiguous": N_("%(id)s names procedures of several states: choose one."),
    "procedure.not_a_party": N_("%(party)s takes no part in %(id)s."),
    "article12.refused": N_("Article XII does not allow this now (%(rule)s): %(remedy)s."),
    # its rule and remedy (services/node/workflows/confidentiality.py Rule, Remedy)
    "article12.rule.nothing_to_forward": N_("nothing to forward"),
    "article12.rule.h2_onward": N_(
        "Art. XII, handling H2: not to be disseminated further without the provider's permission"
    ),
    "article12.rule.h1_judicial": N_(
        "Art. XII, handling H1: not to be used in judicial proceedings without the provider's "
        "permission"
    ),
    "article12.rule.confidential": N_("Art. XII: the supplier asked for confidentiality"),
    "article12.remedy.originator_has_it": N_("%(originator)s sent it: it has it already"),
    "article12.remedy.ask_sharing": N_(
        "ask %(originator)s for consent to share it with %(states)s"
    ),
    "article12.remedy.ask_judicial": N_(
        "ask %(originator)s for permission to use it in judicial proceedings"
    ),
    "article12.remedy.ask_use": N_("ask %(originator)s for consent (%(use)s)"),
    "article12.remedy.send_notice": N_(
        "send %(originator)s a disclosure notice, and wait for its receipt, before disclosing"
    ),
    "rebuild.refused": N_("The rebuild was refused."),
    "export.exists": N_("The file %(path)s already exists."),
    "io.failed": N_("%(path)s cannot be written (%(problem)s)."),
    # the audit service and attachments (Art. XIII exchanges with their files)
    "audit.unreachable": N_("The audit service does not answer at %(hub_url)s."),
    "audit.refused": N_("The audit service refused the request (%(problem)s)."),
    "audit.checkpoint_invalid": N_("The audit checkpoint does not verify (%(problem)s)."),
    "attachment.no_file": N_("%(path)s: no such file to attach."),
    "attachment.refused": N_("The attachment was refused (%(reason)s): %(detail)s."),
    "attachment.upload_incomplete": N_(
        "The attachments were not all stored at the hub (%(problem)s): nothing was sent. "
        "Send it again to resume."
    ),
    "attachment.recipient_backlog": N_(
        "%(recipient)s has not yet confirmed %(held_mib)s MiB of files sent to it before (its "
        "node may be offline), and may hold no more than %(share_mib)s MiB of this node's room "
        "at the hub: nothing was sent. Send these files without %(recipient)s, or once it has "
        "confirmed."
    ),
    "attachment.hub_unreachable": N_(
        "The hub at %(hub_url)s cannot store the attachments (%(problem)s): nothing was sent. "
        "Send it again to resume."
    ),
    "attachment.not_found": N_("Message %(msg_id)s has no attachment %(name)s."),
    "attachment.not_here": N_("%(name)s is not held by this node yet (%(state)s)."),
    "attachment.out_exists": N_("%(path)s already exists."),
    "attachment.too_large": N_("%(name)s is larger than the %(limit)s allowed for an attachment."),
    "attachment.duplicate": N_(
        "Another attached file is also named %(name)s: a message's attachments need distinct names."
    ),
    "attachment.unreadable": N_(
        "%(path)s cannot be read whole: attach a regular file that does not change while it is "
        "sent."
    ),
    "attachment.invalid": N_("The attachments cannot be sent as they are."),
    "forward.attachments_not_held": N_(
        "This node does not hold %(missing)s of the %(count)s attachments of message "
        "%(msg_id)s, so it cannot forward them: nothing was sent. If they are still being "
        "fetched, forward it once they are; if they were refused, ask its sender."
    ),
    # the console's own notices
    "notice.sent": N_("Sealed and queued for %(recipients)s: message %(short_id)s."),
    # the secretariat's console (services/secretariat: SecretariatError codes, and its notices)
    "secretariat.no_such_request": N_("No request %(request)s is waiting for review."),
    "secretariat.not_a_request": N_(
        "This is not a signed request: expected the file made by `cifta directory register` or "
        "`cifta directory rotate`."
    ),
    "secretariat.request_too_large": N_(
        "A signed request is at most %(limit)s bytes: this file is not one."
    ),
    "secretariat.key_id_missing": N_(
        "Type the signing key id the state's point of contact read out to you by telephone."
    ),
    "secretariat.key_id_malformed": N_(
        "A key id is 32 hexadecimal characters (0-9, a-f): %(length)s were typed."
    ),
    "secretariat.key_id_mismatch": N_(
        "The key id typed is not the one in the request of %(party)s: check it again with "
        "%(party)s by telephone. Nothing was approved."
    ),
    "secretariat.approval_frozen": N_(
        "%(count)s wrong key ids were typed for this request: its approval is frozen until "
        "%(until)s. Nothing was approved; check the key id with the state by telephone."
    ),
    "secretariat.approver_frozen": N_(
        "You typed %(count)s wrong key ids: you cannot approve a registration until %(until)s. "
        "Nothing was approved."
    ),
    "secretariat.not_a_registration": N_("Request %(request)s is not a registration."),
    "secretariat.not_a_rotation": N_("Request %(request)s is not a key rotation."),
    "secretariat.directory_refused": N_("The directory refused it: %(detail)s"),
    "secretariat.no_such_party": N_("%(party)s is not in the directory."),
    "secretariat.no_such_key": N_("%(party)s has no key %(kid)s."),
    "secretariat.revocation_time": N_(
        "A revocation cannot take effect in the future: revoke the key at that time."
    ),
    "secretariat.hub_not_running": N_(
        "Signed, but the hub is not running: run `cifta directory publish` once it is."
    ),
    "secretariat.hub_unreachable": N_("The hub cannot be reached: is it running?"),
    "secretariat.hub_refused": N_(
        "Signed, but the hub refused to apply it (%(error)s): see the hub's log, then run "
        "`cifta directory publish`."
    ),
    "secretariat.no_audit_log": N_(
        "There is no audit log yet: the audit service has not run on this hub."
    ),
    "secretariat.verification_running": N_("A verification is already running."),
    "secretariat.bad_input": N_("%(field)s: %(expected)s"),
    "secretariat.bad_time": N_(
        "%(typed)s is not a moment with its time zone: expected e.g. 2026-11-30T08:00:00+00:00."
    ),
    "secretariat.approved": N_(
        "%(party)s approved: directory entry version %(version)s signed and published."
    ),
    "secretariat.declined": N_("The request of %(party)s was declined: nothing was signed."),
    "secretariat.revoked": N_("Key %(kid)s of %(party)s revoked."),
    # a controlled delivery's timeline (services/node/workflows/controlled_delivery.py, Art. XVIII)
    "timeline.proposed": N_("proposed by %(party)s"),
    "timeline.consent": N_("consent of %(party)s"),
    "timeline.declined": N_("declined by %(party)s"),
    "timeline.active": N_("active: every participant consented"),
    "timeline.custody": N_("custody %(src)s -> %(dst)s, seals intact"),
    "timeline.custody_seals_broken": N_("custody %(src)s -> %(dst)s, SEALS NOT INTACT"),
    "timeline.interception": N_("interception by %(party)s: %(decision)s"),
    "timeline.closed": N_("closed: %(outcome)s"),
    # where a licensed transfer stands (services/node/workflows/transfers.py Stage, Art. IX)
    "stage.notified": N_("notified: confirmations awaited"),
    "stage.authorized": N_("authorized for dispatch"),
    "stage.dispatched": N_("dispatched: receipt awaited"),
    "stage.received": N_("receipt confirmed"),
    "stage.discrepancy": N_("received with a discrepancy"),
    "stage.refused": N_("refused"),
    # the workflows' refusals (services/node/workflows/errors.py), each citing its article
    "refusal.unknown_event": N_("unknown event %(event)s"),
    "refusal.step.followup_invalid": N_("%(kind)s: its follow-up would not validate (%(fields)s)"),
    "refusal.addressed.proposal": N_(  # Art. XVIII
        "a proposal goes to %(expected)s, not %(recipients)s"
    ),
    "refusal.addressed.operation": N_(  # Art. XVIII
        "a message of this operation goes to %(expected)s, not %(recipients)s"
    ),
    "refusal.addressed.transfer_notice": N_(  # Art. IX
        "a transfer notice goes to %(expected)s, not %(recipients)s"
    ),
    "refusal.addressed.transfer": N_(  # Art. IX
        "a message of this transfer goes to %(expected)s, not %(recipients)s"
    ),
    "refusal.addressed.trace_answer": N_(  # Art. XIII
        "an answer to a tracing request goes to %(expected)s, not %(recipients)s"
    ),
    "refusal.addressed.reminder": N_(  # Art. XIII
        "a reminder goes to %(expected)s, not %(recipients)s"
    ),
    "refusal.art12.one_state": N_("an Art. XII step goes to one state only"),  # Art. XII
    "refusal.art12.not_a_step": N_("%(kind)s is not an Art. XII step"),  # Art. XII
    "refusal.art12.onward_unnamed": N_(  # Art. XII
        "onward sharing names the third states it would reach"
    ),
    "refusal.art12.no_request": N_("no consent request %(request)s to answer"),  # Art. XII
    "refusal.art12.answered": N_("consent request %(request)s was answered"),  # Art. XII
    "refusal.art12.not_received": N_(  # Art. XII
        "%(msg_id)s is not a message received from %(originator)s"
    ),
    "refusal.art12.not_sent": N_(  # Art. XII
        "%(msg_id)s is not a message of ours sent to %(holder)s"
    ),
    "refusal.art12.forwarded_copy": N_(  # Art. XII
        "%(msg_id)s is a forwarded copy of message %(original)s: ask %(provider)s"
    ),
    "refusal.art12.forwarded_copy_unknown": N_(  # Art. XII
        "%(msg_id)s is a forwarded copy of message %(original)s: ask its provider"
    ),
    "refusal.art12.protocol": N_(  # Art. XII
        "receipts and rejections are not subject to Art. XII"
    ),
    "refusal.delivery.proposer_in_route": N_(  # Art. XVIII
        "the proposing state takes part in its operation"
    ),
    "refusal.delivery.route_outside": N_(  # Art. XVIII
        "the route crosses states not asked: %(states)s"
    ),
    "refusal.delivery.route_broken": N_(  # Art. XVIII
        "the route breaks between %(left)s and %(right)s"
    ),
    "refusal.delivery.not_asked": N_(  # Art. XVIII
        "%(party)s is not a participant asked for consent"
    ),
    "refusal.delivery.already_answered": N_("%(party)s has already answered"),  # Art. XVIII
    "refusal.delivery.consent_late": N_(  # Art. XVIII
        "consent is asked before the operation (%(phase)s)"
    ),
    "refusal.delivery.not_a_leg": N_("%(src)s to %(dst)s is not a leg of the route"),  # Art. XVIII
    "refusal.delivery.proposer_closes": N_(  # Art. XVIII
        "the proposing state (%(proposer)s) closes it"
    ),
    "refusal.delivery.close_not_yet": N_(  # Art. XVIII
        "only an active operation is closed, or a proposal aborted (proposed)"
    ),
    "refusal.delivery.close_not_active": N_(  # Art. XVIII
        "only an active operation is closed (%(phase)s)"
    ),
    "refusal.delivery.closed_early": N_(  # Art. XVIII
        "the operation is not active (closed before every consent arrived)"
    ),
    "refusal.delivery.not_active_yet": N_("the operation is not active (proposed)"),  # Art. XVIII
    "refusal.delivery.not_active": N_("the operation is not active (%(phase)s)"),  # Art. XVIII
    "refusal.delivery.not_holder": N_(  # Art. XVIII
        "%(claimed)s does not hold the consignment (%(holder)s does)"
    ),
    "refusal.delivery.already_proposed": N_(  # Art. XVIII
        "operation %(operation)s was already proposed"
    ),
    "refusal.delivery.handover_party": N_(  # Art. XVIII
        "a hand-over is reported by one of its two states"
    ),
    "refusal.delivery.closure_before_last": N_(  # Art. XVIII
        "the closure is dated before the operation's last step (%(last)s)"
    ),
    "refusal.delivery.not_a_step": N_(  # Art. XVIII
        "%(kind)s is not part of a controlled delivery"
    ),
    "refusal.trace.no_state": N_(  # Art. XIII
        "no state to ask: name one (the firearm was made and imported here)"
    ),
    "refusal.trace.already_status": N_("the request was already %(status)s"),  # Art. XIII
    "refusal.trace.already_answered": N_("the request was already answered"),  # Art. XIII
    "refusal.trace.not_asked": N_("%(party)s was not asked: %(requested)s was"),  # Art. XIII
    "refusal.trace.due_before_filed": N_("the request is due before it was filed"),  # Art. XIII
    "refusal.trace.already_filed": N_("tracing request %(msg_id)s is already filed"),  # Art. XIII
    "refusal.trace.no_request": N_("no tracing request %(request)s to %(state)s"),  # Art. XIII
    "refusal.trace.requester_reminds": N_(  # Art. XIII
        "only the requesting state (%(requester)s) reminds"
    ),
    "refusal.trace.not_due": N_("the request is not due until %(due)s"),  # Art. XIII
    "refusal.transfer.exporter_dispatches": N_(  # Art. IX
        "only the exporting state (%(exporter)s) dispatches"
    ),
    "refusal.transfer.awaiting": N_(  # Art. IX
        "not authorized for dispatch: waiting for %(missing)s"
    ),
    "refusal.transfer.not_authorized": N_("not authorized for dispatch: %(stage)s"),  # Art. IX
    "refusal.transfer.refused_not_authorized": N_(  # Art. IX
        "not authorized for dispatch: refused by %(refused_by)s"
    ),
    "refusal.transfer.importer_confirms_receipt": N_(  # Art. IX
        "only the importing state (%(importer)s) confirms receipt"
    ),
    "refusal.transfer.nothing_dispatched": N_(  # Art. IX
        "nothing dispatched to receive (%(stage)s)"
    ),
    "refusal.transfer.refused_nothing_dispatched": N_(  # Art. IX
        "nothing dispatched to receive (refused by %(refused_by)s)"
    ),
    "refusal.transfer.line_not_dispatched": N_("line %(line)s was not dispatched"),  # Art. IX
    "refusal.transfer.not_confirming_party": N_(  # Art. IX
        "%(party)s is neither the importing nor a transit state"
    ),
    "refusal.transfer.already_confirmed": N_("%(party)s has already confirmed"),  # Art. IX
    "refusal.transfer.confirm_after_dispatch": N_(  # Art. IX
        "confirmations come before dispatch (%(stage)s)"
    ),
    "refusal.transfer.refused_confirm": N_(  # Art. IX
        "confirmations come before dispatch (refused by %(refused_by)s)"
    ),
    "refusal.transfer.exporter_notifies": N_(  # Art. IX
        "the exporting state notifies its transfers (%(exporter)s is the exporter's country, "
        "%(sender)s sent the notice)"
    ),
    "refusal.transfer.already_notified": N_(  # Art. IX
        "transfer %(transfer)s was already notified"
    ),
    "refusal.transfer.importer_confirms": N_(  # Art. IX
        "only the importing state (%(importer)s) confirms"
    ),
    "refusal.transfer.not_transit": N_(  # Art. IX
        "%(party)s is not a transit state of this transfer"
    ),
    "refusal.transfer.not_a_step": N_("%(kind)s is not part of a transfer"),  # Art. IX
    "refusal.transfer.exporter_raises": N_(  # Art. IX
        "only the exporting state (%(exporter)s) raises it"
    ),
    "refusal.transfer.not_dispatched": N_("the transfer was not dispatched"),  # Art. IX
    "refusal.transfer.receipt_confirmed": N_("the receipt was confirmed (%(stage)s)"),  # Art. IX
    "refusal.transfer.importer_reports": N_(  # Art. IX
        "only the importing state (%(importer)s) reports it"
    ),
    "refusal.transfer.no_receipt_yet": N_("no receipt confirmation yet"),  # Art. IX
    "refusal.transfer.receipt_matched": N_(  # Art. IX
        "the receipt matched the dispatch (%(stage)s)"
    ),
    "refusal.transfer.report_mismatch": N_(  # Art. IX
        "the report does not match the receipt confirmation"
    ),
    "refusal.transfer.not_a_party": N_("%(party)s is not a party to transfer %(case)s"),  # Art. IX
    "refusal.transfer.ambiguous": N_("transfer id %(case)s is ambiguous"),  # Art. IX
    "refusal.transfer.not_notified": N_("no transfer %(transfer)s notified"),  # Art. IX
    "refusal.delivery.not_a_party": N_(  # Art. XVIII
        "%(party)s is not a party to operation %(case)s"
    ),
    "refusal.delivery.ambiguous": N_("operation id %(case)s is ambiguous"),  # Art. XVIII
    "refusal.delivery.no_operation": N_("no operation %(operation)s proposed"),  # Art. XVIII
}
