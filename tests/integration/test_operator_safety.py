"""Operator-side safety, each command run as its own ``cifta`` process as an operator types it:
the telephone check of a key id is never turned into copy and paste, the secretariat's keys are
sealed and say so in one line when the passphrase is missing, and a node without its full
onboarding bundle (audit.json included) refuses to start."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.cli.main import main
from services.cli.node_cmd import BUNDLE_FILES
from services.core.directory import registration_request
from services.core.keys import NodeKeys
from services.hub import config
from services.hub.home import PASSPHRASE_ENV, HubHome
from tests.support.hub import Hub, details


def cifta(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CIFTA_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={**clean, **(env or {})}, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line on stderr, and no traceback."""
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture
def request_of_pan(hub_home: Hub, tmp_path: Path) -> tuple[Path, str]:
    """Panama's registration request, and the signing key id it would read out."""
    keys = NodeKeys.generate("PAN")
    path = tmp_path / "request-PAN.json"
    path.write_text(registration_request(keys, details("PAN"), datetime.now(UTC)).model_dump_json())
    return path, keys.signing.public().kid


@pytest.mark.parametrize(
    ("confirm", "says"),
    [
        ([], "--confirm is missing"),
        (["--confirm", ""], "--confirm is missing"),
        (["--confirm", "9a66fd02"], "is not a key id: expected 32 hexadecimal characters"),
        (["--confirm", "0" * 32], "does not match the signing key id in this request"),
    ],
    ids=["missing", "empty", "malformed", "wrong"],
)
def test_approve_without_the_right_key_id_never_shows_the_expected_one(
    hub_home: Hub, request_of_pan: tuple[Path, str], confirm: list[str], says: str
) -> None:
    request, kid = request_of_pan
    done = cifta("directory", "--hub-home", str(hub_home.home.root), "approve", str(request),
                 *confirm, "--name", "Panama")  # fmt: skip
    line = one_line_error(done)
    assert says in line
    assert kid not in done.stdout + done.stderr
    if confirm and confirm[1]:
        assert repr(confirm[1]) in line  # what was typed, to compare with what was read out
    assert hub_home.directory.entry("PAN") is None  # nothing approved


def test_approve_takes_the_key_id_as_read_aloud_in_groups_and_any_case(
    hub_home: Hub, request_of_pan: tuple[Path, str], tmp_path: Path
) -> None:
    request, kid = request_of_pan
    spoken = " ".join(kid[i : i + 4] for i in range(0, 32, 4)).upper()
    bundle = str(tmp_path / "bundle")
    done = cifta("directory", "--hub-home", str(hub_home.home.root), "approve", str(request),
                 "--confirm", spoken, "--name", "Panama", "--out", bundle)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "hub.nk, root.json, audit.json, directory.json" in done.stdout
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [
        "audit.json", "directory.json", "hub.nk", "root.json",
    ]  # fmt: skip


def test_secretariat_keys_are_sealed_and_need_the_passphrase(tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"format": "cifta-registry-v1", "version": 1,
                                    "secretariat": "SEC", "states": []}))  # fmt: skip
    home = tmp_path / "hub"
    sealed = {PASSPHRASE_ENV: "correct horse battery staple"}
    done = cifta("hub", "--home", str(home), "init", "--registry", str(registry), env=sealed)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    for path in (HubHome(home).root_key_file, HubHome(home).secretariat_keys,
                 HubHome(home).audit_key_file):  # fmt: skip
        assert json.loads(path.read_text())["format"] == "cifta-keys-v1+scrypt-aes256gcm"
        assert path.stat().st_mode & 0o777 == 0o600

    out = tmp_path / "root.json"
    line = one_line_error(cifta("directory", "--hub-home", str(home), "root", "--out", str(out)))
    assert "root.key.json is sealed with a passphrase: set CIFTA_HUB_KEY_PASSPHRASE" in line
    line = one_line_error(cifta("audit", "--hub-home", str(home), "verify"))
    assert "audit.key.json is sealed" in line or "root.key.json is sealed" in line
    wrong = {PASSPHRASE_ENV: "wrong"}
    line = one_line_error(
        cifta("directory", "--hub-home", str(home), "root", "--out", str(out), env=wrong)
    )
    assert "wrong passphrase" in line
    done = cifta("directory", "--hub-home", str(home), "root", "--out", str(out), env=sealed)
    assert done.returncode == 0 and json.loads(out.read_text())["kid"]


def test_hub_init_without_a_passphrase_says_the_keys_are_not_sealed(tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"format": "cifta-registry-v1", "version": 1,
                                    "secretariat": "SEC", "states": []}))  # fmt: skip
    done = cifta("hub", "--home", str(tmp_path / "hub"), "init", "--registry", str(registry))
    assert done.returncode == 0
    assert f"warning: {PASSPHRASE_ENV} is not set" in done.stderr


@pytest.mark.parametrize("missing", ["audit.json", "hub.nk", "root.json", "directory.json"])
def test_a_node_without_its_whole_onboarding_bundle_refuses_to_start(
    hub_home: Hub, tmp_path: Path, missing: str
) -> None:
    settings = hub_home.node_settings("MEX", tmp_path, credentials=tmp_path / "MEX" / "hub.nk")
    settings.save()
    (tmp_path / "MEX" / "hub.nk").write_bytes(hub_home.home.node_seed("MEX").read_bytes())
    (tmp_path / "MEX" / missing).unlink()
    line = one_line_error(cifta("node", "run", "--home", str(settings.home)))
    assert f"lacks {missing} of the onboarding bundle" in line
    assert "hub.nk, root.json, audit.json, directory.json" in line


def test_node_init_names_every_file_of_the_bundle(tmp_path: Path) -> None:
    done = cifta("node", "init", "--party", "PAN", "--home", str(tmp_path / "PAN"))
    assert done.returncode == 0, done.stderr
    assert "(hub.nk, root.json, audit.json, directory.json)" in done.stdout


async def test_approve_that_the_hub_refuses_to_provision_says_what_is_left_to_do(
    hub: Hub, request_of_pan: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # the new state's quota larger than the hub's disk, as a sixth state's 10 GiB is on a disk
    # with 50 GiB free: the real server refuses JetStream to that account alone
    rendered = config.account_block

    def oversized_for_panama(registry: Any, state: str, users: Any, plan: Any) -> dict[str, object]:
        block = rendered(registry, state, users, plan)
        if state == "PAN":
            block["jetstream"] = {**block["jetstream"], "max_file": 2**60}  # type: ignore[dict-item]
        return block

    monkeypatch.setattr(config, "account_block", oversized_for_panama)
    request, kid = request_of_pan
    bundle = tmp_path / "bundle"
    code = await asyncio.to_thread(main, [
        "directory", "--hub-home", str(hub.home.root), "approve", str(request), "--confirm", kid,
        "--name", "Panama", "--out", str(bundle),
    ])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2
    [line] = err.strip().splitlines()
    assert "approved, but the hub refused to apply it" in line
    assert str(hub.home.log_file) in line
    assert "`cifta hub provision --state PAN`, then `cifta directory publish`" in line
    # what does not need the hub is done: the entry signed, the bundle written
    assert hub.directory.entry("PAN") is not None
    assert sorted(p.name for p in bundle.iterdir()) == sorted(BUNDLE_FILES)
    assert "insufficient storage resources" in hub.home.log_file.read_text()


def test_approve_of_a_file_that_is_not_a_request_says_so_in_one_line(
    hub_home: Hub, tmp_path: Path
) -> None:
    stray = tmp_path / "details.json"
    stray.write_text(json.dumps(details("PAN")))  # the form, sent instead of the request
    line = one_line_error(cifta("directory", "--hub-home", str(hub_home.home.root), "approve",
                                str(stray), "--confirm", "0" * 32))  # fmt: skip
    assert f"{stray} is not a signed request" in line
