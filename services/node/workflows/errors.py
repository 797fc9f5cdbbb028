"""Why a workflow refuses an event."""

from __future__ import annotations


class IllegalTransition(Exception):
    """An event the workflow cannot take in its present state; the message says why."""


class NotYet(IllegalTransition):
    """An event that may become legal once a message still in flight has arrived: a dispatch
    notice before the importing state's confirmation reached this party, a hand-over before the
    last consent did. A node asks for such a message again later and refuses it only when the
    broker has no delivery attempt left; an officer's own action is simply refused."""
