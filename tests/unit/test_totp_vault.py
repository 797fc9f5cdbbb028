"""The key that seals the officers' TOTP secrets: made once when two processes start together,
and refused when others may read it, another user owns it, or it is not a key."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.core.accounts import AccountError
from services.core.totp_vault import KEY_BYTES, KeyFileRefused, TotpVault
from services.node.accounts import TOTP_KEY_FILE, open_accounts

ROOT = Path(__file__).resolve().parents[2]

#: The second process: opens the vault and prints what its key derives.
RIVAL = (
    "import sys; from pathlib import Path; from services.core.totp_vault import TotpVault;"
    "print(TotpVault.at(Path(sys.argv[1])).derive('check').hex())"
)

#: The first process: opens the vault, and the moment the key's name exists (at the next audit
#: event of the interpreter: a file opened, written, linked, removed) starts the rival and waits
#: for it. What the rival finds is what any process starting then would find.
FIRST = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path
    from services.core.totp_vault import TotpVault

    path, rival_code = Path(sys.argv[1]), sys.argv[2]
    rival = None

    def hook(event, args):
        global rival
        if rival is None and path.exists():
            rival = "starting"
            rival = subprocess.run([sys.executable, "-c", rival_code, str(path)],
                                   capture_output=True, text=True)

    sys.addaudithook(hook)
    mine = TotpVault.at(path).derive("check").hex()
    print(mine, rival.returncode, rival.stdout.strip(), rival.stderr.strip()[-300:], sep="\\n")
    """
)


def test_two_processes_starting_together_use_one_key(tmp_path: Path) -> None:
    """The second process arrives while the first is making the key: it reads the first one's
    key, whole (not a file still empty, not a key of its own that overwrites it)."""
    key = tmp_path / TOTP_KEY_FILE
    done = subprocess.run(
        [sys.executable, "-c", FIRST, str(key), RIVAL],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    mine, rival_status, theirs, rival_error = (done.stdout.splitlines() + [""] * 4)[:4]
    assert rival_status == "0", rival_error
    assert theirs == mine
    assert TotpVault.at(key).derive("check").hex() == mine  # and the file holds that key
    assert [p.name for p in tmp_path.iterdir()] == [TOTP_KEY_FILE]  # no temporary file left


def test_a_new_key_file_is_the_owners_alone(tmp_path: Path) -> None:
    key = tmp_path / TOTP_KEY_FILE
    TotpVault.at(key)
    assert key.stat().st_mode & 0o777 == 0o600 and key.stat().st_size == KEY_BYTES


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_may_read_is_refused_not_tightened(tmp_path: Path, mode: int) -> None:
    key = tmp_path / TOTP_KEY_FILE
    TotpVault.at(key)
    key.chmod(mode)
    with pytest.raises(KeyFileRefused) as refused:
        TotpVault.at(key)
    assert refused.value.code == "accounts.totp_key_exposed"
    assert refused.value.params == {"file": str(key), "mode": f"{mode:04o}"}
    assert key.stat().st_mode & 0o777 == mode  # left as found: the operator decides


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_key_file_another_user_owns_is_refused(tmp_path: Path) -> None:
    key = tmp_path / TOTP_KEY_FILE
    TotpVault.at(key)
    os.chown(key, 65534, 65534)
    with pytest.raises(KeyFileRefused) as refused:
        TotpVault.at(key)
    assert refused.value.code == "accounts.totp_key_foreign"
    assert refused.value.params["owner"] == 65534


def test_a_short_key_or_a_link_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"12345")
    short.chmod(0o600)
    real = tmp_path / "real.key"
    TotpVault.at(real)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    for path in (short, link):
        with pytest.raises(KeyFileRefused) as refused:
            TotpVault.at(path)
        assert refused.value.code == "accounts.totp_key_damaged", path


def test_the_accounts_say_a_refused_key_file_with_its_code(tmp_path: Path) -> None:
    open_accounts(tmp_path / "store.sqlite")[1].close()
    (tmp_path / TOTP_KEY_FILE).chmod(0o644)
    with pytest.raises(AccountError) as refused:
        open_accounts(tmp_path / "store.sqlite")
    assert refused.value.code == "accounts.totp_key_exposed"
