"""``cifta directory ...``: the directory of national points of contact and the key lifecycle.

A state's side (with ``--home``, its node home): ``register`` and ``rotate`` write signed requests
for the secretariat; ``list``, ``show``, ``export`` and ``alerts`` read the node's verified copy.
The secretariat's side (the hub home, ``CIFTA_HUB_HOME``): ``approve``, ``revoke``,
``update-contacts`` and ``publish`` change the signed directory and apply it to the running hub:
configuration reloaded, streams provisioned, entries published into every state's bucket.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hmac
import io
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nats.errors import Error as NatsError
from pydantic import ValidationError

from schemas.directory import ContactRole, DirectoryEntry, SignedRequest
from services.cli import node_cmd
from services.cli.audit_cmd import audit_public
from services.cli.tables import dumps, table
from services.core.directory import (
    DirectoryError,
    cache_document,
    open_request,
    registration_request,
    rotation_request,
)
from services.core.files import write_secret
from services.core.keys import NodeKeys
from services.directory.service import DirectoryService, details_of
from services.hub.config import DIRECTORY_USER, SECRETARIAT_ACCOUNT
from services.hub.home import HubError, HubHome
from services.hub.provision import ProvisionError
from services.node.application import node_alerts
from services.node.settings import NodeSettings

LANGUAGES = ("es", "en", "fr", "pt")
HEADERS = {
    "es": ["función", "nombre", "cargo", "correo", "teléfono", "idiomas"],
    "en": ["role", "name", "position", "e-mail", "phone", "languages"],
    "fr": ["fonction", "nom", "poste", "courriel", "téléphone", "langues"],
    "pt": ["função", "nome", "cargo", "e-mail", "telefone", "idiomas"],
}
ROLES = {
    ContactRole.CUSTOMS: {"es": "aduanas", "en": "customs", "fr": "douanes", "pt": "alfândega"},
    ContactRole.LAW_ENFORCEMENT: {
        "es": "aplicación de la ley",
        "en": "law enforcement",
        "fr": "police",
        "pt": "aplicação da lei",
    },
    ContactRole.LIAISON: {"es": "enlace", "en": "liaison", "fr": "liaison", "pt": "ligação"},
    ContactRole.CENTRAL_AUTHORITY_MLA: {
        "es": "autoridad central (asistencia jurídica, art. XVII.2)",
        "en": "central authority (legal assistance, Art. XVII.2)",
        "fr": "autorité centrale (entraide judiciaire, art. XVII.2)",
        "pt": "autoridade central (assistência jurídica, art. XVII.2)",
    },
}


KEY_ID = re.compile(r"[0-9a-f]{32}")


class DirectoryCliError(Exception):
    pass


# -- the secretariat's side ---------------------------------------------------------------------


def _hub(args: argparse.Namespace) -> HubHome:
    return HubHome(Path(args.hub_home))


def _service(hub: HubHome) -> DirectoryService:
    return hub.directory_service()


def _hub_url(hub: HubHome, args: argparse.Namespace) -> str | None:
    if getattr(args, "url", None):
        return str(args.url)
    return hub.url() if hub.running_pid() is not None else None


def _apply(
    hub: HubHome, service: DirectoryService, args: argparse.Namespace, new_state: str | None = None
) -> None:
    """``apply_to_hub`` for a command, saying what was done."""
    for line in asyncio.run(apply_to_hub(hub, service, _hub_url(hub, args), new_state=new_state)):
        print(line)


async def apply_to_hub(
    hub: HubHome,
    service: DirectoryService,
    url: str | None,
    *,
    new_state: str | None = None,
    tls_ca: Path | None = None,
) -> list[str]:
    """Make the running hub match: config reloaded and the new state provisioned if there is
    one; every entry published into every state's bucket. Returns what was done."""
    done = []
    if new_state is not None:
        hub.render_config()
        if hub.running_pid() is not None:
            hub.reload()
            done.append("configuration reloaded (no restart)")
    if url is None:
        return [*done, "hub not running: run `cifta directory publish` once it is"]
    try:
        if new_state is not None:
            await hub.provision(url, [new_state], tls_ca=tls_ca)
            done.append(f"{new_state} provisioned, and its inbox sourced into the audit stream")
        states = hub.registry().codes()
        seed = hub.user_seed(SECRETARIAT_ACCOUNT, DIRECTORY_USER)
        puts = await service.publish(url, seed, states, tls_ca=tls_ca)
    except (NatsError, TimeoutError, ProvisionError) as exc:
        # The directory and the registry are already changed: what is left is the hub's part,
        # which the operator can finish once the server's reason is dealt with (for example
        # "insufficient storage resources available" in its log: each state reserves its quota).
        again = f"`cifta hub provision --state {new_state}`, then " if new_state else ""
        raise DirectoryCliError(
            f"approved, but the hub refused to apply it ({type(exc).__name__}); see "
            f"{hub.log_file} for the server's reason, then run {again}`cifta directory publish`"
        ) from None
    done.append(f"directory published to {len(states)} states ({puts} entries)")
    return done


def write_bundle(hub: HubHome, service: DirectoryService, state: str, out: Path) -> None:
    """The onboarding bundle: the node's hub credential, the pinned root key, the directory."""
    out.mkdir(parents=True, exist_ok=True)
    write_secret(out / "hub.nk", hub.node_seed(state).read_bytes())
    service.root.save(out / "root.json")
    audit_public(hub).save(out / "audit.json")
    (out / "directory.json").write_text(cache_document(service.all_signed(), service.root))


def _check_confirmation(typed: str | None, kid: str, party: str) -> None:
    """The signing key id the secretariat was read out of band must be the request's.

    Never says what the expected id is: the check is worth something only if the id comes from
    the state by telephone, not from this program's error message.
    """
    if not typed:
        raise DirectoryCliError(
            f"--confirm is missing: pass the signing key id {party} read to you out of band "
            f"(32 hexadecimal characters)"
        )
    spoken = "".join(typed.split()).replace("-", "").lower()  # as read aloud: groups, any case
    if not KEY_ID.fullmatch(spoken):
        raise DirectoryCliError(
            f"--confirm {typed!r} is not a key id: expected 32 hexadecimal characters (0-9, a-f)"
        )
    if not hmac.compare_digest(spoken, kid):
        raise DirectoryCliError(
            f"--confirm {typed!r} does not match the signing key id in this request: check it "
            f"again with {party} out of band; the request is not approved"
        )


def cmd_approve(args: argparse.Namespace) -> int:
    hub = _hub(args)
    service = _service(hub)
    try:
        signed = SignedRequest.model_validate_json(Path(args.request).read_bytes())
    except ValidationError:
        raise DirectoryCliError(
            f"{args.request} is not a signed request (from `cifta directory register` or "
            "`cifta directory rotate`)"
        ) from None
    request = open_request(signed)
    party = request.party
    if signed.kind == "registration":
        _check_confirmation(args.confirm, request.signing_key.kid, party)  # type: ignore[union-attr]
        known = hub.registry().state(party)
        name = args.name or (known.name if known else request.names.en)  # type: ignore[union-attr]
        entry = service.register(signed)
        hub.add_state(party, name)
        new_state = party if known is None else None
    else:
        entry = service.rotate(signed, timedelta(days=args.overlap_days))
        new_state = None
    print(f"{party}: directory entry version {entry.version} signed by root {service.root.kid}")
    if signed.kind == "registration" and args.out:  # before the hub: approval is done by now
        write_bundle(hub, service, party, Path(args.out))
        print(f"onboarding bundle in {args.out}: {node_cmd.bundle_files()}")
        print(f"send it to {party} encrypted; {party} puts these files into its node home")
    _apply(hub, service, args, new_state=new_state)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    hub = _hub(args)
    service = _service(hub)
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    before = service.entry(args.party)
    entry = service.revoke(args.party, args.kid, at)
    print(f"{args.party}: key {args.kid} revoked from {at.isoformat()} (version {entry.version})")
    signing = before is not None and before.keys is not None
    if signing and any(r.kid == args.kid for r in before.keys.signing):  # type: ignore[union-attr]
        # A compromised signing key: the state's broker credential goes with it.
        hub.replace_node_credentials(args.party)
        hub.render_config()
        if hub.running_pid() is not None:
            hub.reload()
        print(f"{args.party}'s hub credential replaced; the old one no longer connects.")
        if args.out:
            write_bundle(hub, service, args.party, Path(args.out))
            print(f"new credential for {args.party} in {args.out}/hub.nk")
    _apply(hub, service, args)
    return 0


def cmd_update_contacts(args: argparse.Namespace) -> int:
    hub = _hub(args)
    service = _service(hub)
    entry = service.update_contacts(args.party, details_of(Path(args.details)))
    print(f"{args.party}: contacts updated (version {entry.version})")
    _apply(hub, service, args)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    hub = _hub(args)
    service = _service(hub)
    _apply(hub, service, args)
    return 0


def cmd_root(args: argparse.Namespace) -> int:
    service = _service(_hub(args))
    service.root.save(Path(args.out))
    print(f"directory root key {service.root.kid} written to {args.out}")
    return 0


# -- a state's side -----------------------------------------------------------------------------


_node = node_cmd._settings


def _keys(settings: NodeSettings) -> tuple[NodeKeys, bytes | None]:
    passphrase = node_cmd._passphrase(settings)
    return NodeKeys.load(settings.keys_path, passphrase), passphrase


def cmd_register(args: argparse.Namespace) -> int:
    settings = _node(args)
    keys, _ = _keys(settings)
    signed = registration_request(keys, details_of(Path(args.details)), datetime.now(UTC))
    Path(args.out).write_text(signed.model_dump_json(indent=2) + "\n")
    print(f"registration request of {keys.party} written to {args.out}")
    print(f"give the secretariat, out of band, the signing key id {keys.signing.public().kid}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    settings = _node(args)
    keys, passphrase = _keys(settings)
    trust = settings.directory_trust()
    version = trust.version_of(keys.party)
    if version == 0:
        raise DirectoryCliError(f"{keys.party} is not in this node's directory yet")
    if args.signing and keys.pending_signing is None:
        keys = keys.with_pending_signing_key()
    keys = keys.with_new_encryption_key(keep_previous=True)
    signed = rotation_request(keys, datetime.now(UTC), new_encryption=True, base_version=version)
    keys.save(settings.keys_path, passphrase)
    Path(args.out).write_text(signed.model_dump_json(indent=2) + "\n")
    print(f"new keys of {keys.party} saved (the previous ones are kept for the overlap)")
    print(f"rotation request written to {args.out}; the node uses the new keys once published")
    return 0


def _entries(args: argparse.Namespace) -> list[DirectoryEntry]:
    if args.home:
        directory = _node(args).directory_trust().directory()
        return [directory.entries[p] for p in directory.parties()]
    return _service(_hub(args)).entries()


def _key_rows(entry: DirectoryEntry) -> list[tuple[str, ...]]:
    if entry.keys is None:
        return []

    def when(t: datetime | None) -> str:
        return "" if t is None else t.isoformat(timespec="seconds")

    rows: list[tuple[str, ...]] = []
    for kind, records in (("signing", entry.keys.signing), ("encryption", entry.keys.encryption)):
        for r in records:
            rows.append(
                (kind, r.kid, r.status.value, when(r.valid_from), when(r.valid_until),
                 when(r.revoked_at))
            )  # fmt: skip
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    entries = _entries(args)
    if args.json:
        print(dumps([e.model_dump(mode="json") for e in entries]))
        return 0
    rows = [
        (e.party, getattr(e.names, args.lang), e.point_of_contact, e.version,
         e.updated_at.isoformat(timespec="seconds"))
        for e in entries
    ]  # fmt: skip
    print(table(["state", "name", "point of contact", "version", "updated"], rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    entry = next((e for e in _entries(args) if e.party == args.party.upper()), None)
    if entry is None:
        raise DirectoryCliError(f"{args.party} is not in the directory")
    if args.json:
        print(dumps(entry.model_dump(mode="json")))
        return 0
    lang = args.lang
    print(f"{entry.party}  {getattr(entry.names, lang)}  (version {entry.version})")
    print(entry.point_of_contact)
    print()
    rows = [
        (ROLES[c.role][lang], c.name, c.position, c.email, c.phone or "", ", ".join(c.languages))
        for c in entry.contacts
    ]
    print(table(HEADERS[lang], rows))
    print()
    print(table(["key", "kid", "status", "valid from", "valid until", "revoked at"],
                _key_rows(entry)))  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    entries = _entries(args)
    if args.format == "json":
        text = dumps([e.model_dump(mode="json") for e in entries]) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["state", "name_es", "name_en", "name_fr", "name_pt", "point_of_contact",
                         "role", "name", "position", "email", "phone", "languages"])  # fmt: skip
        for e in entries:
            names = [e.names.es, e.names.en, e.names.fr, e.names.pt]
            for c in e.contacts or []:
                contact = [c.role.value, c.name, c.position, c.email, c.phone or ""]
                langs = " ".join(c.languages)
                writer.writerow([e.party, *names, e.point_of_contact, *contact, langs])
            if not e.contacts:
                writer.writerow([e.party, *names, e.point_of_contact, "", "", "", "", "", ""])
        text = buffer.getvalue()
    if args.out:
        Path(args.out).write_text(text)
        print(f"{len(entries)} entries exported to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    alerts = [(a.at, a.source, a.detail) for a in node_alerts(args.home)]
    print(table(["at", "source", "detail"], alerts) if alerts else "no alerts")
    return 1 if alerts else 0


def cmd_template(args: argparse.Namespace) -> int:
    example: dict[str, Any] = {
        "names": {
            "es": "República Federativa del Brasil",
            "en": "Federative Republic of Brazil",
            "fr": "République fédérative du Brésil",
            "pt": "República Federativa do Brasil",
        },
        "point_of_contact": "Polícia Federal, Diretoria de Investigação e Combate ao Crime",
        "contacts": [
            {
                "role": "law_enforcement",
                "name": "Del. Ana Paula Ribeiro",
                "position": "Coordenadora de Repressão ao Tráfico de Armas",
                "email": "cifta.pf@pf.example.gov.br",
                "phone": "+556120248000",
                "languages": ["pt", "es", "en"],
            }
        ],
    }
    print(json.dumps(example, indent=2, ensure_ascii=False))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("directory", help="points of contact and their keys: the key lifecycle")
    hub_home = os.environ.get("CIFTA_HUB_HOME", "var/hub")
    node_home = os.environ.get("CIFTA_NODE_HOME")
    d.add_argument("--hub-home", default=hub_home, help="the secretariat's hub home")
    cmds = d.add_subparsers(dest="directory_command", required=True)

    def cmd(name: str, text: str, *, node: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cmds.add_parser(name, help=text)
        if node:
            p.add_argument("--home", default=node_home, help="the node's home (CIFTA_NODE_HOME)")
        return p

    p = cmd("register", "a state: write its signed registration request", node=True)
    p.add_argument("--details", required=True, help="names, point of contact, contacts (JSON)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_register)

    p = cmd("rotate", "a state: new keys, and a rotation request signed by the current key",
            node=True)  # fmt: skip
    p.add_argument("--signing", action="store_true", help="replace the signing key as well")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_rotate)

    p = cmd("approve", "the secretariat: approve a registration or a rotation, and apply it")
    p.add_argument("request")
    p.add_argument("--confirm", help="the signing key id, as the state read it out of band")
    p.add_argument("--name", help="the state's name in the registry (a new state)")
    p.add_argument("--overlap-days", type=float, default=30.0, help="how long replaced keys live")
    p.add_argument("--out", help="write the onboarding bundle here (a registration)")
    p.add_argument("--url", help="the hub's URL (default: the one this hub home started)")
    p.set_defaults(func=cmd_approve)

    p = cmd("revoke", "the secretariat: revoke a key from a stated time")
    p.add_argument("party")
    p.add_argument("kid")
    p.add_argument("--at", help="ISO 8601 time the revocation takes effect (default: now)")
    p.add_argument("--out", help="where to write the state's new hub credential")
    p.add_argument("--url")
    p.set_defaults(func=cmd_revoke)

    p = cmd("update-contacts", "the secretariat: replace a state's contacts or names")
    p.add_argument("party")
    p.add_argument("--details", required=True)
    p.add_argument("--url")
    p.set_defaults(func=cmd_update_contacts)

    p = cmd("publish", "the secretariat: publish every entry into every state's bucket")
    p.add_argument("--url")
    p.set_defaults(func=cmd_publish)

    p = cmd("root", "the secretariat: write the root key every node pins")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_root)

    for name, func, text in [
        ("list", cmd_list, "every party: name, point of contact, version"),
        ("show", cmd_show, "one party's contacts and keys"),
        ("export", cmd_export, "the directory as CSV or JSON"),
    ]:
        p = cmd(name, text, node=True)
        if name == "show":
            p.add_argument("party")
        if name == "export":
            p.add_argument("--format", choices=["csv", "json"], default="csv")
            p.add_argument("--out")
        else:
            p.add_argument("--json", action="store_true")
        p.add_argument("--lang", choices=LANGUAGES, default="en")
        p.set_defaults(func=func)

    p = cmd(
        "alerts",
        "a node's alerts: refused directory updates, audit alarms, overdue receipts",
        node=True,
    )
    p.set_defaults(func=cmd_alerts)
    p = cmd("template", "an example of the details a registration needs")
    p.set_defaults(func=cmd_template)


ERRORS = (DirectoryCliError, DirectoryError, HubError)
