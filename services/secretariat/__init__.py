"""The secretariat's application layer: queries and commands over the hub home, the directory,
the audit log and the hub's own monitoring, for the secretariat's console and tools.

Inputs and outputs are frozen pydantic models; refusals are ``SecretariatError`` with a code and
parameters, never prose, so each front end says them in its reader's language.
"""
