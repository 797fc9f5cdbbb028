"""A state's leaf in its own network namespace, its link to the hub a route that can be removed:
the leaf link cut the way a network cuts it (packets go nowhere; each end notices by its pings),
for the fault tests when running as root.

The namespace and the host are joined by a veth pair on a private /29. The node (on the host)
reaches the leaf at the namespace's address, the leaf reaches the hub's leaf listener at a second
host address through one /32 route: removing that route cuts the leaf link alone.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)  # noqa: S603, S607


def available() -> bool:
    """Whether this process may create network namespaces (root)."""
    return os.geteuid() == 0


@dataclass
class NetnsLink:
    name: str
    host_if: str
    subnet: int  # the third octet of 10.199.<subnet>.0/29

    @classmethod
    def create(cls) -> NetnsLink:
        tag = secrets.token_hex(3)
        link = cls(f"cifta-{tag}", f"vc{tag}", secrets.randbelow(250) + 1)
        _ip("netns", "add", link.name)
        try:
            _ip("link", "add", link.host_if, "type", "veth", "peer", "name", "vl" + tag)
            _ip("link", "set", "vl" + tag, "netns", link.name)
            _ip("addr", "add", f"{link.host_addr}/29", "dev", link.host_if)
            _ip("addr", "add", f"{link.hub_addr}/32", "dev", link.host_if)
            _ip("link", "set", link.host_if, "up")
            ns = ("netns", "exec", link.name, "ip")
            _ip(*ns, "addr", "add", f"{link.leaf_addr}/29", "dev", "vl" + tag)
            _ip(*ns, "link", "set", "vl" + tag, "up")
            _ip(*ns, "link", "set", "lo", "up")
            _ip(*ns, "route", "add", f"{link.hub_addr}/32", "via", link.host_addr)
        except subprocess.CalledProcessError:
            link.delete()
            raise
        return link

    @property
    def host_addr(self) -> str:
        return f"10.199.{self.subnet}.1"

    @property
    def leaf_addr(self) -> str:
        return f"10.199.{self.subnet}.2"

    @property
    def hub_addr(self) -> str:
        """Where the hub's leaf listener listens: outside the /29, so reachable from the
        namespace by its one /32 route alone."""
        return f"10.199.{self.subnet}.9"

    def cut(self) -> None:
        """Both ways: the leaf's route to the hub removed, the hub's packets to the leaf
        dropped (one rule for this one pair of addresses; the node's own traffic to the leaf
        comes from another address and still flows)."""
        _ip("netns", "exec", self.name, "ip", "route", "del", f"{self.hub_addr}/32")
        _ip("rule", "add", "from", self.hub_addr, "to", self.leaf_addr, "blackhole")

    def restore(self) -> None:
        subprocess.run(["ip", "rule", "del", "from", self.hub_addr, "to", self.leaf_addr,  # noqa: S603, S607
                        "blackhole"], capture_output=True, check=False)  # fmt: skip
        _ip("netns", "exec", self.name, "ip", "route", "add", f"{self.hub_addr}/32",
            "via", self.host_addr)  # fmt: skip

    def delete(self) -> None:
        subprocess.run(["ip", "rule", "del", "from", self.hub_addr, "to", self.leaf_addr,  # noqa: S603, S607
                        "blackhole"], capture_output=True, check=False)  # fmt: skip
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)  # noqa: S603, S607
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)  # noqa: S603, S607
