"""The test bed's ports: a range of the suite's own, out of the kernel's reach, taken in turn."""

from __future__ import annotations

import errno
import itertools
import socket

import pytest

from services.testbed import ports


def ephemeral_low() -> int:
    with open(ports.EPHEMERAL, encoding="ascii") as f:
        return int(f.read().split()[0])


def test_without_a_range_the_server_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ports.ENV, raising=False)
    assert ports.pick() == -1


class Busy(socket.socket):
    """A socket whose bind fails as for a port in use on the ports listed in ``busy``, and
    succeeds on any other without binding anything: the test, not the machine, says which."""

    busy: set[int] = set()

    def bind(self, address: object) -> None:
        assert isinstance(address, tuple)
        if address[1] in self.busy:
            raise OSError(errno.EADDRINUSE, "Address already in use")


def test_ports_are_taken_in_turn_skipping_one_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    first = 20000
    monkeypatch.setenv(ports.ENV, f"{first}-{first + 3}")
    monkeypatch.setattr(Busy, "busy", {first + 1})
    monkeypatch.setattr(ports.socket, "socket", Busy)
    monkeypatch.setitem(ports._next, (first, first + 3), first)
    assert [ports.pick() for _ in range(4)] == [first, first + 2, first + 3, first]


def test_a_full_range_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        held = holder.getsockname()[1]
        monkeypatch.setenv(ports.ENV, f"{held}-{held}")
        with pytest.raises(OSError, match=f"{ports.ENV}={held}-{held}"):
            ports.pick()


@pytest.mark.parametrize("text", ["20000", "a-b", "30000-20000", "80-90", "20000-70000"])
def test_a_malformed_range_names_the_variable(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(ports.ENV, text)
    with pytest.raises(ValueError, match=f"{ports.ENV}={text!r}: expected FIRST-LAST"):
        ports.pick()


def test_the_workers_ranges_are_disjoint_and_below_the_ephemeral_range() -> None:
    if ports.worker_range(0) is None:
        pytest.skip("this machine's ephemeral ports leave no room below them for the ranges")
    ranges = [ports.worker_range(w) for w in range(8)]
    bounds = [tuple(int(p) for p in r.split("-")) for r in ranges if r is not None]
    assert len(bounds) == 8
    assert all(first <= last < ephemeral_low() for first, last in bounds)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(bounds))
    assert ports.worker_range(8) is None
