"""The consoles' shared web foundation.

Which module holds what: ``config`` the settings a console is built with; ``rendering`` Jinja2
templates translated per request; ``security`` headers, CSP, CSRF and the sign-in rate limit;
``auth`` sessions, sign-in with password and second factor, roles; ``app`` the factory that
assembles a console from these and the routers of its pages.
"""

from services.console.web.app import create_app
from services.console.web.auth import SignedIn, current_officer, require_role
from services.console.web.config import ConsoleConfig
from services.console.web.rendering import Renderer, render
from services.console.web.security import ConsoleRefusal

__all__ = [
    "ConsoleConfig",
    "ConsoleRefusal",
    "Renderer",
    "SignedIn",
    "create_app",
    "current_officer",
    "render",
    "require_role",
]
