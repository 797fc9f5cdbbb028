"""The seal options are one typed definition (``SealOptions``); at run time a name outside it is
refused rather than sealed as if the option had been left at its default."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.core.envelope import SealOptions, peek_header, seal
from tests.builders import party


def _seal(**options: Any) -> bytes:
    sender, recipient = party("MEX"), party("USA")
    body = example_body("info.trafficking_routes")
    return seal(body, sender=sender, recipients=[recipient.current_encryption.public()], **options)


def test_a_misspelt_seal_option_is_refused_not_ignored() -> None:
    with pytest.raises(TypeError, match=r"unknown seal option\(s\): confidental"):
        _seal(handling=HandlingCode.H2, confidental=True)


def test_sealing_without_a_handling_code_is_refused() -> None:
    with pytest.raises(TypeError, match="handling code"):
        _seal(confidential=True)


def test_every_seal_option_reaches_the_header() -> None:
    options: SealOptions = {
        "handling": HandlingCode.H3,
        "confidential": True,
        "handling_note": "not to be shared outside the requesting agency",
        "case_id": "MEX-FGR-2026-0412",
        "in_reply_to": "01890a5d-ac96-774b-bcce-b302099a8057",
    }
    h = peek_header(_seal(**options))
    assert (h.handling, h.confidential, h.handling_note, h.case_id, h.in_reply_to) == (
        HandlingCode.H3, True, options["handling_note"], options["case_id"],
        options["in_reply_to"],
    )  # fmt: skip
