"""The officer's commands speak the reader's language (es, en, fr, pt): ``--lang`` first, else
``LC_ALL``, ``LC_MESSAGES``, ``LANG``; a locale the Convention has no text in reads English.
``cifta`` is run as a process, as an officer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def cifta(*argv: str, lang: str = "C.UTF-8", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CIFTA_OFFICER", "CIFTA_NODE_HOME", "LC_ALL", "LC_MESSAGES")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *argv],
        capture_output=True, text=True, env={**clean, "LANG": lang, **env}, timeout=60,
        check=False,
    )  # fmt: skip


def test_an_error_is_in_spanish_under_a_mexican_spanish_locale(tmp_path: Path) -> None:
    home = str(tmp_path / "nowhere")
    run = cifta("show", "--home", home, "01ab", lang="es_MX.UTF-8")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"error: {home} no es el directorio de un nodo: ejecute primero `cifta node init`"
    ]


def test_lang_fr_puts_a_usage_mistake_and_an_error_in_french(tmp_path: Path) -> None:
    usage = cifta("trace", "new", "--priority", "soon", "--lang", "fr", lang="es_MX.UTF-8")
    assert usage.returncode == 2
    assert usage.stderr.splitlines() == [
        "erreur : cifta trace new : --priority 'soon' n'est pas accepté : attendu l'une des "
        "valeurs routine, urgent"
    ]
    home = str(tmp_path / "nowhere")
    error = cifta("inbox", "--lang=fr", "--home", home)
    assert error.returncode == 2
    assert error.stderr.splitlines() == [
        f"erreur : {home} n'est pas le répertoire d'un nœud : exécutez d'abord `cifta node init`"
    ]


def test_the_help_of_a_command_is_in_brazilian_portuguese() -> None:
    run = cifta("send", "--help", lang="pt_BR.UTF-8")
    assert run.returncode == 0
    help_text = " ".join(run.stdout.split())  # argparse wraps the lines to the terminal
    assert "selar uma mensagem para um ou vários Estados e colocá-la na fila" in help_text
    assert "Estados destinatários, separados por vírgulas (USA,COL)" in help_text
    assert "recipient states" not in help_text
    assert run.stdout.startswith("uso: cifta send ")  # argparse's own words too
    assert "-h, --help mostrar esta mensagem de ajuda e sair" in help_text


def test_a_locale_without_a_convention_language_falls_back_to_english(tmp_path: Path) -> None:
    home = str(tmp_path / "nowhere")
    for lang in ("de_DE.UTF-8", "C", "POSIX"):
        run = cifta("show", "--home", home, "01ab", lang=lang)
        assert run.stderr.splitlines() == [
            f"error: {home} is not a node home: run `cifta node init` first"
        ], lang


def test_lc_all_wins_over_lang_and_lang_option_over_both(tmp_path: Path) -> None:
    home = str(tmp_path / "nowhere")
    run = cifta("show", "--home", home, "01ab", lang="fr_FR.UTF-8", LC_ALL="pt_BR.UTF-8")
    assert run.stderr.startswith(f"erro: {home} não é o diretório de um nó")
    run = cifta("show", "--lang", "es", "--home", home, "01ab", LC_ALL="pt_BR.UTF-8")
    assert run.stderr.startswith(f"error: {home} no es el directorio de un nodo")


def test_a_node_whose_keys_or_directory_cannot_be_read_is_told_why_in_the_readers_language(
    tmp_path: Path,
) -> None:
    """No English from the key file's or the directory's library reaches the officer's line;
    under --json the code and its reason stay for a program."""
    home = tmp_path / "PAN"
    made = cifta("node", "init", "--party", "PAN", "--home", str(home), "--passphrase-env", "PW",
                 PW="first passphrase")  # fmt: skip
    assert made.returncode == 0, made.stderr
    (home / "node.json").write_text('{"party": "PAN"}')  # no passphrase_env: the key is sealed
    sealed = cifta("inbox", "--home", str(home), "--lang", "fr")
    assert sealed.stderr.splitlines() == [
        f"erreur : {home}/keys.json est scellé par une phrase secrète : indiquez dans node.json, "
        "comme passphrase_env, la variable qui la contient"
    ]
    (home / "node.json").write_text('{"party": "PAN", "passphrase_env": "PW"}')
    wrong = cifta("inbox", "--home", str(home), "--lang", "es", PW="another passphrase")
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines() == [
        f"error: {home}/keys.json no se abre con la frase de contraseña dada: revise la variable "
        "de la frase de contraseña o restaure el archivo de claves desde la copia de seguridad"
    ]
    root = cifta("inbox", "--home", str(home), "--lang", "pt", PW="first passphrase")
    assert root.stderr.splitlines() == [
        f"erro: a chave raiz fixada do diretório {home}/root.json não pode ser lida: restaure-a "
        "a partir do pacote de integração"
    ]
    (home / "keys.json").chmod(0o644)
    exposed = cifta("inbox", "--home", str(home), "--json", lang="es_MX.UTF-8", PW="x")
    error = json.loads(exposed.stderr)["error"]
    assert error["code"] == "node.keys_unreadable"
    assert error["params"] == {"reason": "exposed", "file": f"{home}/keys.json", "mode": "644"}
    assert error["message"].endswith("no se usa; déjelo solo para su propietario (chmod 600)")
    for run in (sealed, wrong, root, exposed):
        assert "passphrase-protected" not in run.stderr and "cannot read" not in run.stderr
    (home / "keys.json").unlink()
    missing = cifta("inbox", "--home", str(home), "--lang", "fr", PW="first passphrase")
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        f"erreur : {home}/keys.json est introuvable : indiquez le répertoire du nœud de cet État "
        "(`cifta node init` en crée un) ou restaurez le fichier de clés depuis la sauvegarde"
    ]
