"""``cifta officer ...`` as a person runs it: in their language, one line per mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from services.node.accounts import open_accounts
from tests.support.console import Clock, add_officers, node_home, officer


def cifta(
    *argv: str, lang: str = "C.UTF-8", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LANG": lang, "LC_ALL": "", "LC_MESSAGES": "", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *argv],
        capture_output=True, text=True, env=environment, timeout=60, check=False,
    )  # fmt: skip


def test_officer_accounts_are_added_listed_disabled_and_reset_in_the_readers_language(
    tmp_path: Path,
) -> None:
    home = str(node_home(tmp_path, "BRA"))
    added = cifta(
        "officer", "add", "--home", home, "--login", "bia.souza", "--name", "Beatriz Souza",
        "--position", "Delegada", "--agency", "Polícia Federal", "--language", "pt",
        "--role", "supervisor", "--password-env", "PW", lang="pt_BR.UTF-8",
        env={"PW": "uma senha bem longa"},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "Servidor bia.souza cadastrado (supervisor)."
    generated = cifta(
        "officer", "add", "--home", home, "--login", "ana", "--name", "Ana Ruiz",
        "--position", "Analista", "--agency", "PF", "--lang", "es",
    )  # fmt: skip
    assert (
        generated.returncode == 0 and "Contraseña (se muestra una sola vez): " in generated.stdout
    )
    listed = json.loads(cifta("officer", "list", "--home", home, "--json").stdout)
    assert [(o["login"], o["role"], o["second_factor"]) for o in listed] == [
        ("ana", "officer", False), ("bia.souza", "supervisor", False)
    ]  # fmt: skip
    table = cifta("officer", "list", "--home", home, "--lang", "fr").stdout
    assert table.splitlines()[0].split()[:2] == ["Identifiant", "Nom"]
    disabled = cifta("officer", "disable", "--home", home, "ana", "--lang", "en")
    assert disabled.stdout.strip() == "Officer ana disabled; their sessions have ended."
    reset = cifta("officer", "reset-password", "--home", home, "bia.souza", "--lang", "fr")
    assert reset.returncode == 0 and "Mot de passe (affiché une seule fois) : " in reset.stdout


def test_mistakes_get_one_translated_line_naming_what_was_typed(tmp_path: Path) -> None:
    home = str(node_home(tmp_path, "MEX"))
    bad = cifta(
        "officer", "add", "--home", home, "--login", "Ana Ruiz", "--name", "Ana",
        "--position", "Analista", "--agency", "FGR", lang="es_MX.UTF-8",
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "error: El usuario Ana Ruiz no es válido: se esperan de 3 a 32 letras minúsculas, "
        "dígitos, '.', '-' o '_'."
    ]
    role = cifta(
        "officer", "add", "--home", home, "--login", "ana", "--name", "Ana", "--position", "X",
        "--agency", "FGR", "--role", "chief", "--lang", "en",
    )  # fmt: skip
    assert role.stderr.strip() == (
        "error: The role chief is not known: expected officer, supervisor or admin."
    )
    unknown = cifta("officer", "disable", "--home", home, "nobody", "--lang", "pt")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "erro: Nenhum servidor com o login nobody."
    nohome = cifta("officer", "list", "--home", str(tmp_path / "nowhere"), "--lang", "fr")
    assert nohome.returncode == 2 and "n'est pas le répertoire d'un nœud" in nohome.stderr
    assert "Traceback" not in bad.stderr + role.stderr + unknown.stderr + nohome.stderr


def test_an_administrator_sees_who_holds_a_security_key_and_removes_them(tmp_path: Path) -> None:
    from services.core.security_keys import RelyingParty, SecurityKeys
    from services.node.accounts import open_accounts
    from services.node.settings import NodeSettings
    from tests.support.authenticator import SoftAuthenticator
    from tests.support.console import PASSWORD, Clock

    home = node_home(tmp_path, "BRA")
    added = cifta("officer", "add", "--home", str(home), "--login", "rui", "--name", "Rui Lopes",
                  "--position", "Agente", "--agency", "PF", "--password-env", "PW",
                  env={"PW": PASSWORD})  # fmt: skip
    assert added.returncode == 0, added.stderr
    accounts, database = open_accounts(NodeSettings.load(home).store_path)
    try:  # a key enrolled as the console enrols one
        rp, now = RelyingParty("localhost", "http://localhost:8080", "CIFTA"), Clock().now
        rui, keys = accounts.get("rui"), SecurityKeys(database)
        session = accounts.open_session(rui, now)
        device = SoftAuthenticator(origin=rp.origin)
        keys.register(rui, session, device.create(keys.registration_options(rui, session, rp, now)),
                      rp, now)  # fmt: skip
    finally:
        database.close()
    listed = json.loads(cifta("officer", "list", "--home", str(home), "--json").stdout)
    assert [(o["login"], o["security_keys"]) for o in listed] == [("rui", 1)]
    table = cifta("officer", "list", "--home", str(home), "--lang", "pt").stdout
    assert "Chaves de segurança" in table.splitlines()[0]
    removed = cifta("officer", "remove-keys", "--home", str(home), "rui", "--lang", "es")
    assert removed.stdout.strip() == "Llaves de seguridad de rui retiradas: 1."
    listed = json.loads(cifta("officer", "list", "--home", str(home), "--json").stdout)
    assert [(o["login"], o["security_keys"]) for o in listed] == [("rui", 0)]
    unknown = cifta("officer", "remove-keys", "--home", str(home), "nadie", "--lang", "es")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "Traceback" not in unknown.stderr


def test_a_lost_totp_key_is_said_and_reset_password_recovers(tmp_path: Path) -> None:
    """The key that seals the officers' second factors deleted: listing says what is missing in
    the reader's language (no new key made behind the administrator's back); resetting a
    password makes a new key and gives that officer a new second factor."""
    home = node_home(tmp_path, "MEX")
    add_officers(home, [officer("ana")], Clock().now)  # enrolled: a sealed secret
    open_accounts(home / "store.sqlite")[1].close()
    key = home / "console-totp.key"
    key.unlink()
    listed = cifta("officer", "list", "--home", str(home), "--lang", "es")
    assert listed.returncode == 2 and "console-totp.key" in listed.stderr
    assert "restáurelo desde la copia de seguridad" in listed.stderr and not key.exists()
    reset = cifta("officer", "reset-password", "--home", str(home), "ana", "--lang", "en")
    assert reset.returncode == 0 and key.exists(), reset.stderr
    assert cifta("officer", "list", "--home", str(home)).returncode == 0


def test_a_key_file_others_may_read_is_refused_in_one_line_by_the_cli_and_the_console(
    tmp_path: Path,
) -> None:
    home = node_home(tmp_path, "BRA")
    open_accounts(home / "store.sqlite")[1].close()
    (home / "console-totp.key").chmod(0o644)
    for command in (("officer", "list", "--home", str(home), "--lang", "en"),
                    ("console", "--home", str(home))):  # fmt: skip
        done = cifta(*command, lang="en")
        assert done.returncode == 2, command
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "may be read by other users (mode 0644)" in lines[0]
        assert "chmod 600" in lines[0]
    assert (home / "console-totp.key").stat().st_mode & 0o777 == 0o644
