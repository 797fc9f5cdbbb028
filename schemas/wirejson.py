"""Strict JSON for everything that travels: one meaning per byte string.

RFC 8259 leaves duplicate member names to the parser (section 4: "the names within an object
SHOULD be unique"), and most parsers silently keep the last one. A signed header or body that two
receivers read differently defeats the signature, so every received JSON text is parsed here: UTF-8
without a byte order mark (RFC 8259 section 8.1), no duplicate member name at any depth, none of
the non-JSON constants (``NaN``, ``Infinity``) Python's parser would otherwise accept, no unpaired
surrogate (RFC 7493 section 2.1), no more than 200 levels of nesting below the top one, and no
number of more than 4,300 digits before its point.

The parse is jiter's (the JSON parser of pydantic-core, compiled), which checks all of this in one
pass. Only when it refuses a text does Python's own parser read it again, with hooks, to say why in
words that never quote the content (jiter's messages name the duplicated member).
"""

from __future__ import annotations

import json
from typing import Any

import jiter

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
    name at any depth, a non-JSON constant, an unpaired surrogate, nesting deeper than 200 below
    the top level, or anything that is not one JSON text."""
    if data.startswith(_BOM):
        raise WireJSONError("byte order mark")
    try:
        return jiter.from_json(
            data, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode="keys"
        )
    except ValueError:
        raise _why(data) from None


def _why(data: bytes) -> WireJSONError:
    """The reason jiter refused ``data``, in this module's words."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return WireJSONError("not UTF-8")
    try:
        _DECODER.decode(text)
    except WireJSONError as exc:
        return exc
    except (ValueError, RecursionError):
        return WireJSONError("not JSON")
    # What Python's parser takes and jiter refuses: an unpaired surrogate, nesting deeper than
    # 200, a number of more than 4,300 digits before its point (with a fraction or an exponent).
    return WireJSONError(
        "not JSON as received here: an unpaired surrogate, nesting deeper than 200,"
        " or a number too long"
    )
