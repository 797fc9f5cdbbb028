"""What JetStream may use on the hub's server, and how it is shared among the accounts.

The operator gives JetStream a disk (``max_file_store``) and a memory (``max_memory_store``). A
single nats-server refuses to start JetStream when the accounts' limits add up to more than that
("insufficient memory resources available (10028)"), and each stream's ``max_bytes`` counts against
its account's limit. So the limits are planned here, before anything is rendered, and a plan that
does not fit is refused with the numbers:

- every state's account gets the same file limit, sized for ``planned_states`` states (the OAS's
  35 member states by default), so approving a new state never shrinks the others' limits;
- the AUDIT account gets as much as all the states together: its stream sources every inbox, so it
  holds a second copy of everything they hold;
- no account reserves memory: every stream the hub provisions is a file stream, and an account
  with ``max_mem`` 0 cannot create a memory stream at all.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from services.core.envelope import MAX_ENVELOPE_BYTES

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4
#: The Organization of American States' member states: the membership the Convention's network
#: is planned for.
OAS_MEMBERSHIP = 35
DEFAULT_MEMORY = 256 * MIB
#: Below this a state's account could hold only a handful of the largest envelopes.
MIN_STATE_DISK = 8 * MAX_ENVELOPE_BYTES
#: nats-server replaces a zero or negative ``max_memory_store`` by a guess of its own.
MIN_MEMORY = 16 * MIB
#: nats-server's own default: 75% of the disk available where the store lives.
DEFAULT_DISK_SHARE = 0.75

_UNITS = {"": 1, "b": 1, "k": KIB, "kb": KIB, "kib": KIB, "m": MIB, "mb": MIB, "mib": MIB,
          "g": GIB, "gb": GIB, "gib": GIB, "t": TIB, "tb": TIB, "tib": TIB}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class ResourceError(ValueError):
    """The configuration asks for more than the server has or was given; the message says how
    much was asked, how much there is, and which setting to change."""


def parse_size(text: str, what: str = "size") -> int:
    """Bytes of ``text`` such as ``200GiB``, ``512M`` or ``1073741824`` (units are binary)."""
    match = _SIZE.fullmatch(text)
    unit = match and _UNITS.get(match.group(2).lower())
    if not match or unit is None:
        raise ResourceError(
            f"{what}: {text!r} is not a size; expected e.g. 200GiB, 512MiB or a number of bytes"
        )
    return int(float(match.group(1)) * unit)


def format_size(size: int) -> str:
    """``size`` bytes for a person: ``14.6 MiB``, ``200 GiB``."""
    for unit, name in ((TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if size >= unit:
            return f"{size / unit:.1f}".removesuffix(".0") + f" {name}"
    return f"{size} B"


@dataclass(frozen=True)
class Resources:
    """What the operator gives JetStream on this server, and how many states to plan for."""

    jetstream_disk: int
    jetstream_memory: int = DEFAULT_MEMORY
    planned_states: int = OAS_MEMBERSHIP
    #: Each state account's file limit; None: an equal share of the disk.
    state_disk: int | None = None


@dataclass(frozen=True)
class StreamSizes:
    """``max_bytes`` of each stream in a state's account (per replica)."""

    inbox: int
    quarantine: int
    directory: int
    undelivered: int
    #: the encrypted attachments the state stores for its recipients (docs/envelope.md 13.4)
    attachments: int = 0


@dataclass(frozen=True)
class Plan:
    """The accounts' JetStream limits, checked to fit the server's resources."""

    resources: Resources
    shares: int  # the number of state accounts the disk is divided among
    state_disk: int
    audit_disk: int
    #: the secretariat's account holds the blind lookup's filter bucket (docs/lookup.md)
    secretariat_disk: int = 0

    def state_limits(self) -> dict[str, int]:
        # inbox, quarantine, directory bucket, the undelivered record and the attachments, plus
        # one spare
        return {"max_file": self.state_disk, "max_mem": 0, "max_streams": 6}

    def audit_limits(self) -> dict[str, int]:
        return {"max_file": self.audit_disk, "max_mem": 0}

    def secretariat_limits(self) -> dict[str, int]:
        """The secretariat's own account stores the states' signed lookup filters and nothing
        else: its directory service writes into the states' buckets through imports."""
        return {"max_file": self.secretariat_disk, "max_mem": 0}

    def stream_sizes(self, replicas: int = 1) -> StreamSizes:
        """How a state's file limit is shared among its streams. Each replica of a stream counts
        against the account's limit (nats-server's un-tiered limits), so sizes shrink with it."""
        room = self.state_disk // max(replicas, 1)
        directory = min(64 * MIB, room // 16)
        undelivered = min(16 * MIB, room // 64)
        quarantine = room // 8
        attachments = room // 4  # the cap on what the state itself stores for others
        inbox = room - quarantine - directory - undelivered - attachments
        return StreamSizes(inbox, quarantine, directory, undelivered, attachments)


SECRETARIAT_MIN_DISK = 64 * MIB
SECRETARIAT_MAX_DISK = 1024 * MIB


def disk_capacity(store_dir: Path) -> int:
    """What the store could grow to: the space free on its filesystem plus what it holds."""
    existing = next(p for p in (store_dir, *store_dir.parents) if p.exists())
    held = sum(f.stat().st_size for f in store_dir.rglob("*") if f.is_file())
    return shutil.disk_usage(existing).free + (held if store_dir.exists() else 0)


def machine_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_resources(store_dir: Path) -> Resources:
    """nats-server's own default disk (75% of what is available), made explicit so that the
    accounts' limits can be planned against it."""
    return Resources(jetstream_disk=int(disk_capacity(store_dir) * DEFAULT_DISK_SHARE))


def plan(resources: Resources, states: int, store_dir: Path, *, check_machine: bool = True) -> Plan:
    """Share ``resources`` among ``states`` state accounts and the AUDIT account, or refuse.
    ``check_machine``: also check them against this machine's disk and memory (when rendering;
    not when sizing the streams of a configuration already rendered)."""
    disk = resources.jetstream_disk
    if check_machine:
        _check_machine(resources, store_dir)
    shares = max(states, resources.planned_states)
    # the lookup filters: a few filters per state of at most a few MiB each
    sec_disk = min(max(disk // 64, SECRETARIAT_MIN_DISK), SECRETARIAT_MAX_DISK)
    state_disk = resources.state_disk or (disk - sec_disk) // 2 // shares
    # Every state's share twice: once in its inbox, once in the AUDIT stream's copy.
    if shares * state_disk * 2 + sec_disk > disk:
        raise ResourceError(
            f"{shares} states x {format_size(state_disk)} (--state-disk), and as much again for "
            f"the audit stream's copy, and {format_size(sec_disk)} for the lookup filters, is "
            f"{format_size(shares * state_disk * 2 + sec_disk)}: more than the "
            f"{format_size(disk)} given to JetStream (--jetstream-disk)"
        )
    if state_disk < MIN_STATE_DISK:
        needed = shares * 2 * MIN_STATE_DISK + SECRETARIAT_MIN_DISK
        raise ResourceError(
            f"{format_size(disk)} of JetStream disk for {shares} states leaves each state "
            f"{format_size(state_disk)}, less than the {format_size(MIN_STATE_DISK)} minimum: "
            f"give --jetstream-disk at least {format_size(needed)}"
        )
    return Plan(resources, shares, state_disk, disk - shares * state_disk - sec_disk, sec_disk)


def _check_machine(resources: Resources, store_dir: Path) -> None:
    disk, memory = resources.jetstream_disk, resources.jetstream_memory
    if disk > (capacity := disk_capacity(store_dir)):
        raise ResourceError(
            f"--jetstream-disk {format_size(disk)} is more than the {format_size(capacity)} "
            f"the store's filesystem has free for it ({store_dir})"
        )
    if memory > (physical := machine_memory()):
        raise ResourceError(
            f"--jetstream-memory {format_size(memory)} is more than the {format_size(physical)} "
            "of memory this machine has"
        )
    if memory < MIN_MEMORY:
        raise ResourceError(
            f"--jetstream-memory {format_size(memory)} is less than the {format_size(MIN_MEMORY)}"
            " minimum"
        )
