"""The settings a console is built with."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


def public_origin(text: str) -> str:
    """``text`` as the origin a browser reports for the console (RFC 6454: ``scheme://host``, the
    port only when not the scheme's default, the host in lower case); ValueError for anything
    else (a path, a query, an IP address: WebAuthn allows no address as relying party)."""
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text}: not an origin ({exc}): expected https://NAME[:PORT]") from None
    host = parts.hostname or ""
    if parts.scheme not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        raise ValueError(f"{text}: not an origin: expected https://NAME[:PORT]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text}: an origin has no path: expected https://NAME[:PORT]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # WebAuthn 5.1.4.1: an RP ID is a domain
        raise ValueError(f"{text}: a host name, not an address: expected https://NAME[:PORT]")
    shown = "" if port is None or port == _DEFAULT_PORTS[parts.scheme] else f":{port}"
    return f"{parts.scheme}://{host}{shown}"


def trusted_proxy(text: str) -> str:
    """``text`` as an address or network (``10.0.0.2``, ``10.0.0.0/24``, ``::1``) whose
    X-Forwarded-For a console believes; ValueError for anything else, ``*`` included: a console
    never takes a client's word for its own address."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{text}: expected an IP address or network, e.g. 127.0.0.1") from None


def system_clock() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class NavItem:
    """One entry of the console's navigation: its path, its (untranslated) label, and the role
    it needs, if any."""

    path: str
    label: str
    role: str | None = None


@dataclass(frozen=True)
class ConsoleConfig:
    """What a console is and how it behaves.

    ``secure`` is True when it is served over TLS: cookies then carry ``Secure`` and the
    ``__Host-`` prefix, and HSTS is sent. ``login_rate`` bounds sign-in attempts per client
    address (count, seconds) before any password is checked; ``login_slots`` how many passwords
    are verified at once (each takes a worker thread about 0.2 s; an attempt finding none free
    is answered as rate-limited).

    ``public_origin`` is the name the console is served under, as browsers report it
    (``https://console.example.org``, :func:`public_origin`): the security keys' relying party
    and the only origin a POST may come from. Without it, security keys work only on this
    machine (a loopback host name: development), never under whatever Host a request names.
    ``trusted_proxies``: behind a reverse proxy, every client arrives from the proxy's address;
    only from these addresses is the forwarded client address believed (for the rate limit).
    """

    title: str
    party: str
    secure: bool = False
    home: str = "/"
    nav: tuple[NavItem, ...] = ()
    clock: Callable[[], datetime] = system_clock
    login_rate: tuple[int, float] = (30, 300.0)
    login_slots: int = 2
    #: how often pages that wait for news (the inbox) ask the server, in seconds
    poll_s: float = 3.0
    #: the largest request body accepted: refused from its Content-Length before it is read, or
    #: cut off once the bytes received pass it (a form of text is far smaller)
    max_body_bytes: int = 1024 * 1024
    #: the paths (regular expressions, whole path) that take files, and their larger bound
    upload_paths: tuple[str, ...] = ()
    max_upload_bytes: int = 0
    extra_template_dirs: tuple[str, ...] = field(default_factory=tuple)
    public_origin: str | None = None
    #: the reverse proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto
    #: are believed: a request arriving from one of them is counted under the client address it
    #: forwards; from anyone else, those headers are ignored
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.public_origin is not None:
            object.__setattr__(self, "public_origin", public_origin(self.public_origin))
        proxies = tuple(trusted_proxy(p) for p in self.trusted_proxies)
        object.__setattr__(self, "trusted_proxies", proxies)

    @property
    def session_cookie(self) -> str:
        # RFC 6265bis 4.1.3.2: a __Host- cookie is Secure, host-only and Path=/
        return "__Host-cifta_session" if self.secure else "cifta_session"

    @property
    def presession_cookie(self) -> str:
        return "__Host-cifta_presession" if self.secure else "cifta_presession"
