"""The settings a console is built with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


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

    @property
    def session_cookie(self) -> str:
        # RFC 6265bis 4.1.3.2: a __Host- cookie is Secure, host-only and Path=/
        return "__Host-cifta_session" if self.secure else "cifta_session"

    @property
    def presession_cookie(self) -> str:
        return "__Host-cifta_presession" if self.secure else "cifta_presession"
