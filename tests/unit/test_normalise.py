"""Normalisation of a firearm's marks (docs/lookup.md, section 2): vectors and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.normalise import (
    MarkError,
    firearm,
    fold,
    normalise_calibre,
    normalise_make,
    normalise_model,
    normalise_serial,
)

#: The spec's vectors (docs/lookup.md keeps the same table): typed, normalised.
SERIAL_VECTORS = [
    ("BXKM417", "8XKM417"),
    ("bxkm-417", "8XKM417"),
    ("SN 000123", "5N123"),
    ("sn-0O12 345", "5N12345"),
    ("x0-007", "X7"),
    ("000", "0"),
    ("\uff21\uff11\uff12\uff13", "A123"),  # full-width A123
    ("AB/12.0034", "A8120034"),  # separators go first: the zeros are inside a run
    ("ñ-12", "N12"),
]
MAKE_VECTORS = [
    ("Glock", "GLOCK"),
    ("Glock Ges.m.b.H.", "GLOCK"),
    ("Smith & Wesson", "SMITHWESSON"),
    ("Sturm, Ruger & Co., Inc.", "STURMRUGER"),
    ("S.A.", "SA"),  # a make of company-form words alone keeps its last one
    ("Bérétta", "BERETTA"),
    ("FN Herstal", "FNHERSTAL"),
]
CALIBRE_VECTORS = [(".45 ACP", "45ACP"), ("9 x 19 mm", "9X19MM"), ("5,56\u00d745", "556X45")]


@pytest.mark.parametrize(("typed", "expected"), SERIAL_VECTORS)
def test_serial_vectors(typed: str, expected: str) -> None:
    assert normalise_serial(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), MAKE_VECTORS)
def test_make_vectors(typed: str, expected: str) -> None:
    assert normalise_make(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), CALIBRE_VECTORS)
def test_calibre_vectors(typed: str, expected: str) -> None:
    assert normalise_calibre(typed) == expected


def test_lookup_input_is_prefix_make_zero_byte_serial() -> None:
    f = firearm("Glock", "G19 Gen5", "9x19mm", "BXKM417")
    assert f.lookup_input() == b"cifta-lookup-v1\x00GLOCK\x008XKM417"
    assert (f.model, f.calibre) == ("G19GEN5", "9X19MM")


def test_model_and_calibre_do_not_change_the_lookup_input() -> None:
    a = firearm("Glock", "17", "9 mm", "ABC123")
    b = firearm("GLOCK", "G17 Gen4", "9x19 Parabellum", "abc-123")
    assert a.lookup_input() == b.lookup_input()


@pytest.mark.parametrize(
    ("field", "marks"),
    [("make", ("--", "M", "9mm", "1")), ("serial", ("Glock", "M", "9mm", " - / ")),
     ("serial", ("Glock", "M", "9mm", "1" * 65))],
)  # fmt: skip
def test_an_unusable_mark_is_named(field: str, marks: tuple[str, str, str, str]) -> None:
    with pytest.raises(MarkError) as caught:
        firearm(*marks)
    assert caught.value.field == field


marks = st.text(max_size=40)
separators = st.sampled_from([" ", "-", ".", "/", "_", "\t", "\u00b7", "\u2013"])


@given(marks)
def test_normalising_twice_changes_nothing(text: str) -> None:
    for f in (normalise_model, normalise_calibre):
        assert f(f(text)) == f(text)
    try:
        once = normalise_serial(text)
    except MarkError:
        return
    assert normalise_serial(once) == once


@given(marks)
def test_serial_is_capitals_and_digits_with_no_look_alike_letter_or_leading_zero(text: str) -> None:
    try:
        out = normalise_serial(text)
    except MarkError:
        return
    assert re.fullmatch(r"[A-Z0-9]{1,64}", out)
    assert not set(out) & set("OQDILZSGB")
    assert not re.search(r"(?<![0-9])0[0-9]", out)


@given(marks, st.lists(st.tuples(st.integers(0, 40), separators), max_size=5))
def test_separators_anywhere_do_not_change_a_mark(text: str, cuts: list[tuple[int, str]]) -> None:
    spaced = text
    for at, sep in sorted(cuts, reverse=True):
        spaced = spaced[:at] + sep + spaced[at:]
    assert fold(spaced) == fold(text)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=30))
def test_case_and_full_width_forms_do_not_change_a_serial(text: str) -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in text.upper())
    assert normalise_serial(text) == normalise_serial(text.upper()) == normalise_serial(full_width)


@given(st.text(alphabet="ACEFHJKMNPRTUVWXY", min_size=1, max_size=8), st.integers(1, 99999),
       st.integers(0, 4))  # fmt: skip
def test_leading_zeros_of_a_digit_run_do_not_change_a_serial(
    letters: str, number: int, zeros: int
) -> None:
    assert normalise_serial(f"{letters}{'0' * zeros}{number}") == f"{letters}{number}"
