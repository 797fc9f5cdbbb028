"""Strict JSON for everything that travels: one meaning per byte string.

RFC 8259 leaves duplicate member names to the parser (section 4: "the names within an object
SHOULD be unique"), and most parsers silently keep the last one. A signed header or body that two
receivers read differently defeats the signature, so every received JSON text is parsed here: UTF-8
without a byte order mark (RFC 8259 section 8.1), no duplicate member name at any depth, and none of
the non-JSON constants (``NaN``, ``Infinity``) Python's parser would otherwise accept.
"""

from __future__ import annotations

import json
from typing import Any

_BOM = b"\xef\xbb\xbf"


class WireJSONError(ValueError):
    """The bytes are not strict JSON; the message says why, without quoting the content."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise WireJSONError("duplicate member name")
    return obj


def _no_constant(name: str) -> Any:
    raise WireJSONError(f"{name} is not JSON")


#: One decoder for every call (``json.loads`` with hooks builds a new one each time).
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def loads_strict(data: bytes) -> Any:
    """Parse received JSON bytes; raise WireJSONError for a BOM, bad UTF-8, a duplicate member
    name at any depth, a non-JSON constant, or anything that is not one JSON text."""
    if data.startswith(_BOM):
        raise WireJSONError("byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WireJSONError("not UTF-8") from None
    try:
        return _DECODER.decode(text)
    except WireJSONError:
        raise
    except ValueError:
        raise WireJSONError("not JSON") from None
