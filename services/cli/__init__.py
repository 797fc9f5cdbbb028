"""The ``cifta`` command for officers and operators."""
