"""How every state writes a firearm's marks before a blind lookup (docs/lookup.md, section 2).

Two registers match a firearm only if they spell its marks byte for byte alike, and officers do
not: ``Glock``, ``GLOCK``, ``glock``; ``AB-012 345``, ``ab012345``, ``AB0l2345``. Art. VI of the
Convention and the UN International Tracing Instrument (para. 8) ask for a unique marking of the
manufacturer's name and a serial number; so the lookup input is built from those two marks alone,
normalised here, while model and calibre (spelled too many ways to match exactly: ``17`` and
``G17``, ``9 mm`` and ``9x19``) are normalised for display and for the tracing request.

Pure functions: no I/O, no locale, no clock. Every rule is in the spec with test vectors.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: Prefix of the OPRF input: a version, so that a change of these rules is a change of inputs.
LOOKUP_INPUT_PREFIX = b"cifta-lookup-v1\x00"
#: Longest mark accepted, in characters, before and after normalisation.
MAX_MARK_CHARS = 64

#: Letters read for digits on worn or hand-copied serial numbers: every state maps them alike,
#: so that ``SN-0O1`` and ``SN-001`` meet. A few distinct serials collide; a hit only offers a
#: tracing request, which a person answers, so recall wins over precision here.
_LOOK_ALIKES = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2",
                              "S": "5", "G": "6", "B": "8"})  # fmt: skip


#: Company-form words dropped from the end of a make, so that a register's ``Glock Ges.m.b.H.``
#: meets an officer's ``Glock`` (and ``Sturm, Ruger & Co., Inc.`` meets ``Sturm Ruger``).
LEGAL_FORMS = frozenset(
    {"AB", "AG", "AS", "BV", "CO", "CORP", "CORPORATION", "COMPANY", "GESMBH", "GMBH", "INC",
     "KG", "LLC", "LTD", "LTDA", "NV", "OY", "PLC", "SA", "SADECV", "SAS", "SPA", "SRL"}
)  # fmt: skip


class MarkError(ValueError):
    """A mark that cannot be normalised: ``field`` names it, ``problem`` says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def fold(text: str) -> str:
    """Upper-case ASCII letters and digits only: NFKC, accents dropped, everything else removed.

    NFKC first turns full-width and compatibility forms into plain ones (full-width G to ``G``,
    superscript two to ``2``), the multiplication sign U+00D7 is read as ``X``; NFD then splits
    accented letters so the accent can be dropped (``É`` -> ``E``).
    """
    # U+00D7 MULTIPLICATION SIGN (a typeset "5.56 x 45") has no compatibility form: read as X
    compatible = unicodedata.normalize("NFKC", text).replace("\u00d7", "X").upper()
    decomposed = unicodedata.normalize("NFD", compatible)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


def _strip_leading_zeros(text: str) -> str:
    """Leading zeros of every run of digits removed (``AB00120`` -> ``AB120``; ``000`` -> ``0``)."""
    out: list[str] = []
    run: list[str] = []
    for c in [*text, ""]:
        if c.isdigit():
            run.append(c)
            continue
        if run:
            out.append("".join(run).lstrip("0") or "0")
            run = []
        out.append(c)
    return "".join(out)


def _checked(field: str, raw: str, value: str, *, required: bool) -> str:
    if len(raw) > MAX_MARK_CHARS * 4:
        raise MarkError(field, f"longer than {MAX_MARK_CHARS * 4} characters")
    if required and not value:
        raise MarkError(field, "no letter or digit in it")
    if len(value) > MAX_MARK_CHARS:
        raise MarkError(field, f"more than {MAX_MARK_CHARS} letters and digits")
    return value


def normalise_make(raw: str) -> str:
    """The manufacturer's name: each space-separated word folded, company-form words
    (:data:`LEGAL_FORMS`) dropped from the end while a word stays, the rest joined
    (``Smith & Wesson Inc.`` -> ``SMITHWESSON``; ``Glock Ges.m.b.H.`` -> ``GLOCK``)."""
    words = [w for w in (fold(part) for part in raw.split()) if w]
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    return _checked("make", raw, "".join(words), required=True)


def normalise_model(raw: str) -> str:
    """The model: folded (``Model 17 Gen4`` -> ``MODEL17GEN4``); may be empty."""
    return _checked("model", raw, fold(raw), required=False)


def normalise_calibre(raw: str) -> str:
    """The calibre: folded (``.45 ACP`` -> ``45ACP``, ``9 x 19 mm`` -> ``9X19MM``); may be empty."""
    return _checked("calibre", raw, fold(raw), required=False)


def normalise_serial(raw: str) -> str:
    """The serial number: folded, look-alike letters read as digits, then leading zeros of every
    digit run dropped (``sn-0O12 345`` -> ``5N12345``, ``x0-007`` -> ``X7``)."""
    value = _strip_leading_zeros(fold(raw).translate(_LOOK_ALIKES))
    return _checked("serial", raw, value, required=True)


@dataclass(frozen=True)
class Firearm:
    """A firearm's marks, normalised. Build it with :func:`firearm`."""

    make: str
    model: str
    calibre: str
    serial: str

    def lookup_input(self) -> bytes:
        """The OPRF input: prefix, make, a zero byte, serial (all ASCII)."""
        return LOOKUP_INPUT_PREFIX + self.make.encode("ascii") + b"\x00" + self.serial.encode()


def firearm(make: str, model: str, calibre: str, serial: str) -> Firearm:
    """Normalise the four marks an officer types; raise :class:`MarkError` naming the bad one."""
    return Firearm(
        make=normalise_make(make),
        model=normalise_model(model),
        calibre=normalise_calibre(calibre),
        serial=normalise_serial(serial),
    )
