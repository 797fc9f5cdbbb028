"""The node's application layer: what an officer or operator does at a node, as typed commands
and queries that every front end (the ``cifta`` CLI, the officers' console) calls alike.

Which module holds what: ``service`` the :class:`Application` and :func:`open_node`; ``models``
the messages' commands and answers (and :class:`OfficerIdentity`); ``procedure_models`` the
procedures'; ``errors`` the one :class:`ApplicationError` and its catalogue of codes;
``messaging`` send, reply, inbox, open, status, templates; ``tracing`` tracing and transfer steps;
``deliveries`` controlled-delivery and Article XII steps; ``queries`` lists, statistics and
deadlines; ``plumbing`` id lookup, body parsing, dry runs and the node's refusals as codes.
"""

from services.node.application.errors import ERROR_CODES, ApplicationError, ErrorCode
from services.node.application.models import OfficerIdentity
from services.node.application.service import Application, load_settings, open_node

__all__ = [
    "ERROR_CODES",
    "Application",
    "ApplicationError",
    "ErrorCode",
    "OfficerIdentity",
    "load_settings",
    "open_node",
]
