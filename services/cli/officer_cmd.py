"""``cifta officer add | list | disable | reset-password | remove-keys``: the officers of a
node's console.

Messages are in the reader's language (``--lang``, else ``LANG``); a mistake is one line naming
what was typed and what is expected. A password is read from the environment variable named by
``--password-env``; without it one is generated and shown once.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from services import i18n
from services.cli import messages
from services.cli.node_access import add_lang
from services.core.accounts import AccountError, Accounts, Officer, Role
from services.core.security_keys import SecurityKeys
from services.i18n import N_


def _language(args: argparse.Namespace) -> str:
    lang = getattr(args, "lang", None)  # cifta main has chosen it already, from the same places
    return i18n.from_environment(lang, os.environ) if lang else messages.language()


def _say(args: argparse.Namespace, code: str, **params: object) -> None:
    print(i18n.translate(code, params, _language(args)))


def _store_path(home: str | None) -> Path:
    """The node's store, from its home (``node.json`` or ``CIFTA_NODE_STORE`` may name it)."""
    from services.node.settings import NodeSettings

    if not home or not (Path(home) / "node.json").exists():
        raise AccountError("officer.store_missing", home=home or "--home")
    return NodeSettings.load(Path(home)).store_path


def _open(args: argparse.Namespace) -> Accounts:
    opener = getattr(args, "open_accounts", None)
    if opener is not None:  # another console's accounts (the secretariat's, in the hub home)
        return opener(args)  # type: ignore[no-any-return]
    from services.node.accounts import open_accounts

    # resetting a password is how officers recover from a lost TOTP key (a new one is made)
    recovering = getattr(args, "officer_func", None) is cmd_reset_password
    accounts, _ = open_accounts(_store_path(args.home), recovering=recovering)
    return accounts


def _keys(args: argparse.Namespace) -> SecurityKeys | None:
    """The node's security keys (another console's accounts hold none)."""
    if getattr(args, "open_accounts", None) is not None:
        return None
    from services.node.accounts import open_accounts

    return SecurityKeys(open_accounts(_store_path(args.home))[1])


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from ``--password-env``, or a generated one (and True: show it)."""
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise AccountError("officer.field_required", field=f"${args.password_env}")
        return value, False
    return secrets.token_urlsafe(15), True


def _operator_record(accounts: Accounts, login: str, action: str) -> None:
    # the shell's user is who acted: recorded beside the officer concerned
    accounts.record(login, action, datetime.now(UTC), operator=getpass.getuser())


def cmd_add(args: argparse.Namespace) -> int:
    accounts = _open(args)
    password, generated = _password(args)
    officer = accounts.add(
        login=args.login, name=args.name, position=args.position, agency=args.agency,
        language=args.language, role=args.role, password=password, now=datetime.now(UTC),
    )  # fmt: skip
    _operator_record(accounts, officer.login, "account_added")
    _say(args, "officer.added", login=officer.login, role=officer.role.value)
    if generated:
        print(
            i18n.gettext_for(_language(args), N_("Password (shown once): %(password)s"))
            % {"password": password}
        )
    return 0


def _row(officer: Officer, keys: int) -> dict[str, object]:
    return {
        "login": officer.login, "name": officer.name, "position": officer.position,
        "agency": officer.agency, "language": officer.language, "role": officer.role.value,
        "second_factor": officer.enrolled, "security_keys": keys, "disabled": officer.disabled,
        "locked_until": officer.locked_until.isoformat() if officer.locked_until else None,
    }  # fmt: skip


def cmd_list(args: argparse.Namespace) -> int:
    officers = _open(args).officers()
    keys = _keys(args)
    counts = keys.counts() if keys is not None else {}
    if args.json:
        print(json.dumps([_row(o, counts.get(o.login, 0)) for o in officers], indent=2))
        return 0
    language = _language(args)
    yes, no = i18n.gettext_for(language, N_("yes")), i18n.gettext_for(language, N_("no"))
    header = [i18n.gettext_for(language, h) for h in (
        N_("Login"), N_("Name"), N_("Position"), N_("Agency"), N_("Language"), N_("Role"),
        N_("Second factor"), N_("Security keys"), N_("Disabled"),
    )]  # fmt: skip
    rows = [header] + [
        [o.login, o.name, o.position, o.agency, o.language, o.role.value,
         yes if o.enrolled else no, str(counts.get(o.login, 0)), yes if o.disabled else no]
        for o in officers
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    accounts = _open(args)
    accounts.disable(args.login, datetime.now(UTC))
    _operator_record(accounts, args.login, "account_disabled")
    _say(args, "officer.disabled_now", login=args.login)
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    accounts = _open(args)
    password, generated = _password(args)
    accounts.reset_password(args.login, password, datetime.now(UTC))
    keys = _keys(args)
    removed = keys.remove_all(args.login) if keys is not None else 0
    _operator_record(accounts, args.login, "password_reset")
    if removed:  # a new password starts a new second factor: the keys go with the TOTP secret
        _operator_record(accounts, args.login, "security_keys_removed")
    _say(args, "officer.password_reset", login=args.login)
    if generated:
        print(
            i18n.gettext_for(_language(args), N_("Password (shown once): %(password)s"))
            % {"password": password}
        )
    return 0


def cmd_remove_keys(args: argparse.Namespace) -> int:
    accounts, keys = _open(args), _keys(args)
    accounts.get(args.login)  # an unknown login is named as such
    removed = keys.remove_all(args.login) if keys is not None else 0
    _operator_record(accounts, args.login, "security_keys_removed")
    _say(args, "officer.keys_removed", login=args.login, count=removed)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run an officer command; a refusal is one translated line on stderr, exit code 2."""
    try:
        return int(args.officer_func(args))
    except AccountError as exc:
        print(
            i18n.gettext_for(_language(args), N_("error: %(reason)s"))
            % {"reason": i18n.translate(exc.code, exc.params, _language(args))},
            file=sys.stderr,
        )
        return 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``cifta officer ...`` to the CLI (help in the command's language)."""
    t = messages.t

    home = os.environ.get("CIFTA_NODE_HOME")
    officer = sub.add_parser("officer", help=t(N_("officer accounts of the node's console")))
    commands = officer.add_subparsers(dest="officer_command", required=True)

    def command(name: str, text: str, func: object) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = commands.add_parser(name, help=t(text))
        p.add_argument("--home", default=home, help=t(N_("the node's home (or CIFTA_NODE_HOME)")))
        add_lang(p)
        p.set_defaults(func=run, officer_func=func)
        return p

    add = command("add", N_("add an officer"), cmd_add)
    add.add_argument("--login", required=True, help=t(N_("3 to 32 of a-z, 0-9, '.', '-', '_'")))
    add.add_argument("--name", required=True, help=t(N_("full name")))
    add.add_argument("--position", required=True, help=t(N_("position, as signed")))
    add.add_argument("--agency", required=True, help=t(N_("agency")))
    add.add_argument("--language", default="es", help="es, en, fr, pt")
    add.add_argument("--role", default=Role.OFFICER.value, help="officer, supervisor, admin")
    add.add_argument("--password-env", help=t(N_("read the password from this variable")))
    lst = command("list", N_("list the officers"), cmd_list)
    lst.add_argument("--json", action="store_true")
    dis = command("disable", N_("disable an officer and end their sessions"), cmd_disable)
    dis.add_argument("login")
    rst = command("reset-password", N_("set a new password; the second factor is enrolled again"),
                  cmd_reset_password)  # fmt: skip
    rst.add_argument("login")
    rst.add_argument("--password-env", help=t(N_("read the password from this variable")))
    rmk = command("remove-keys", N_("remove an officer's security keys"), cmd_remove_keys)
    rmk.add_argument("login")
