"""``make console``: the demo network with the officer consoles of MEX (Spanish) and BRA
(Portuguese) on loopback, demo officers with their credentials, until interrupted.

The URLs and the demo credentials (passwords and TOTP secrets, for an authenticator app) are
printed and written to ``var/console/urls.json`` (mode 0600); they are demo accounts on a
throw-away network under ``var/console/network``.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import sys
import threading
from pathlib import Path

from services.testbed.consoles import ConsoleNetwork, DemoOfficer, console_network, write_urls

VAR = Path("var/console")

#: (state, login, name, position, agency, language, role)
DEMO_OFFICERS = (
    ("MEX", "ana.torres", "Ana Torres Medina", "Analista de rastreo",
     "Fiscalía General de la República", "es", "officer"),
    ("MEX", "sergio.ibarra", "Sergio Ibarra", "Coordinador de entregas vigiladas",
     "Fiscalía General de la República", "es", "supervisor"),
    ("BRA", "joao.lima", "João Lima", "Agente de Polícia Federal", "Polícia Federal", "pt",
     "officer"),
    ("BRA", "beatriz.souza", "Beatriz Souza", "Delegada", "Polícia Federal", "pt", "supervisor"),
)  # fmt: skip


def add_demo_officers(network: ConsoleNetwork) -> None:
    for state, login, name, position, agency, language, role in DEMO_OFFICERS:
        if state in network.homes:
            password = secrets.token_urlsafe(12)
            network.add_officer(
                state, DemoOfficer(login, name, position, agency, language, role, password)
            )


def _print(network: ConsoleNetwork, urls_file: Path) -> None:
    for state, url in network.urls.items():
        print(f"{state}: {url}/login")
        for o in network.officers.get(state, []):
            print(f"  {o.login} ({o.role}, {o.language})  password {o.password}  "
                  f"TOTP secret {o.secret}")  # fmt: skip
    if network.secretariat_url:
        print(f"secretariat: {network.secretariat_url}/login")
        for o in network.officers.get("SEC", []):
            print(f"  {o.login} ({o.role}, {o.language})  password {o.password}  "
                  f"TOTP secret {o.secret}")  # fmt: skip
    for name, url in network.metrics.items():
        print(f"metrics of {name}: {url}")
    print(f"written to {urls_file}; add a TOTP secret to an authenticator app (RFC 6238)")
    print("Ctrl-C stops the network", flush=True)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # a second signal (a process group signalled twice) must not cut the stopping short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt  # unwinds the network: nodes, consoles and hub stop


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    root = VAR / "network"
    shutil.rmtree(root, ignore_errors=True)  # a fresh demo network every time
    root.mkdir(parents=True)
    with console_network(root.resolve(), ("MEX", "BRA"), secretariat=True, metrics=True) as network:
        add_demo_officers(network)
        urls_file = VAR / "urls.json"
        write_urls(network, urls_file)
        _print(network, urls_file)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
