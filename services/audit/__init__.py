"""The audit service: every message and its handling, in a tamper-evident RFC 9162 log."""
