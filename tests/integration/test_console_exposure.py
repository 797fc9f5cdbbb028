"""A console never serves passwords, second-factor codes and session cookies in the clear beyond
this machine: as the hub, it refuses a plaintext listener off loopback, unless told that a
TLS-terminating proxy is in front (then its cookies are Secure and it sends HSTS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.console_cmd import exposed
from services.cli.main import build_parser


def cifta(*args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANG": lang}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("command", "lang", "expected"),
    [
        (("console", "--home", "NODE"), "en", "listens beyond this machine without TLS"),
        (("console", "--home", "NODE"), "es_MX.UTF-8", "escucha fuera de esta máquina sin TLS"),
        (("secretariat", "console"), "en", "listens beyond this machine without TLS"),
    ],
)
def test_a_console_off_loopback_without_tls_is_refused_in_one_line(
    tmp_path: Path, command: tuple[str, ...], lang: str, expected: str
) -> None:
    args = [a.replace("NODE", str(tmp_path)) for a in command]
    done = cifta(*args, "--host", "0.0.0.0", lang=lang)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "0.0.0.0" in lines[0]
    assert "--behind-tls-proxy" in lines[0] and "Traceback" not in done.stderr


def test_loopback_tls_or_a_declared_proxy_may_serve() -> None:
    parser = build_parser()
    for argv in (
        ["console", "--host", "127.0.0.1"],
        ["console", "--host", "::1"],
        ["console", "--host", "10.0.0.5", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        ["console", "--host", "10.0.0.5", "--behind-tls-proxy"],
    ):
        assert not exposed(parser.parse_args(argv)), argv
    assert exposed(parser.parse_args(["console", "--host", "10.0.0.5"]))
    assert exposed(parser.parse_args(["console", "--host", "console.example.org"]))


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--trusted-proxy", "*", "--trusted-proxy * is not an IP address or network"),
        ("--public-origin", "https://10.0.0.5", "--public-origin https://10.0.0.5 is not an orig"),
    ],
)
def test_a_console_refuses_to_trust_anyone_or_to_be_named_by_an_address(
    tmp_path: Path, option: str, value: str, expected: str
) -> None:
    from tests.support.console import node_home

    home = node_home(tmp_path, "MEX")
    done = cifta("console", "--home", str(home), "--behind-tls-proxy", option, value)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


def test_trusted_proxies_are_read_as_addresses_or_networks() -> None:
    from services.cli.console_cmd import trusted_proxies

    args = build_parser().parse_args(
        ["console", "--behind-tls-proxy", "--trusted-proxy", "10.0.0.2",
         "--trusted-proxy", "fd00::/64"]
    )  # fmt: skip
    assert trusted_proxies(args) == ("10.0.0.2/32", "fd00::/64")
