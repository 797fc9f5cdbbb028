"""Ports for the test bed's servers, which it may stop and start again on the port they had.

A hub the test bed kills and brings back at its URL, or a cluster member restarted, leaves its
ports free meanwhile. A port the kernel picked (port 0, or -1 in a server's configuration) comes
from its ephemeral range, where the kernel may give it in that time to anything else on the
machine that asks for a free port: a server that another test starts, when the suite runs on
several workers. The server then cannot come back on its port, and the test fails for a reason
of its neighbour's.

With ``CIFTA_TESTBED_PORTS=FIRST-LAST`` set (the suite gives each of its workers a range of its
own, below the ephemeral range: tests/conftest.py), the test bed takes such ports from that range
in turn; the kernel gives none of them to a program that asks it for a free port. (Two runs of
the suite at once on one machine would share the ranges, each starting at a random port of
them.) Without it, the kernel picks (the demo, a bench).

Servers that ``cifta`` commands start in the tests (``cifta hub start``, ``cifta demo
--cluster``) pick their ports as deployed servers do, from the kernel.
"""

from __future__ import annotations

import errno
import os
import random
import socket

ENV = "CIFTA_TESTBED_PORTS"
EPHEMERAL = "/proc/sys/net/ipv4/ip_local_port_range"

#: The next port to try, per range (a process starts at a random place in its range, so that a
#: command it runs, inheriting the range, does not pick the same ports in the same order).
_next: dict[tuple[int, int], int] = {}


def configured() -> tuple[int, int] | None:
    """The range set in the environment, or None; ValueError naming the variable if malformed."""
    text = os.environ.get(ENV)
    if not text:
        return None
    first, sep, last = text.partition("-")
    if not (sep and first.isdigit() and last.isdigit() and 1024 <= int(first) <= int(last) < 65536):
        raise ValueError(f"{ENV}={text!r}: expected FIRST-LAST, two ports from 1024 to 65535")
    return int(first), int(last)


def pick(host: str = "127.0.0.1") -> int:
    """A port of the configured range that nothing on ``host`` is bound to now, each port in
    turn; -1 (the server's own choice at its start) when no range is set."""
    span = configured()
    if span is None:
        return -1
    first, last = span
    size = last - first + 1
    start = _next.get(span, first + random.randrange(size))  # noqa: S311 - not a secret
    for i in range(size):
        port = first + (start - first + i) % size
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
        _next[span] = first + (port - first + 1) % size
        return port
    raise OSError(errno.EADDRINUSE, f"no free port left in {ENV}={first}-{last}")


def worker_range(worker: int, workers: int = 8, width: int = 1500) -> str | None:
    """The range of the suite's worker number ``worker``: below the kernel's ephemeral range
    (``width`` ports each, ``workers`` of them), or None if there is no room below it."""
    try:
        with open(EPHEMERAL, encoding="ascii") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    first = low - workers * width + worker * width
    if worker >= workers or first < 1024:
        return None
    return f"{first}-{first + width - 1}"
