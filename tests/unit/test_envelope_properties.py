"""Property-based tests: seal/open round trips, and opening anything raises only EnvelopeError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import BODY_MODELS, Body
from services.core.encoding import b64u
from services.core.envelope import EnvelopeError
from tests.builders import as_json, example_body, header_of, opened, party, sealed, to_bytes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _text_fields(body: Body) -> list[str]:
    return [
        k
        for k, v in body.model_dump().items()
        if isinstance(v, str) and k != "kind" and len(v) > 20
    ]


@FAST
@given(kind=st.sampled_from(sorted(BODY_MODELS)), text=st.text(min_size=1, max_size=2000))
def test_seal_open_round_trips_generated_bodies(kind: str, text: str) -> None:
    example = example_body(kind)
    fields = _text_fields(example)
    assume(fields)
    try:
        body = type(example).model_validate({**example.model_dump(mode="json"), fields[0]: text})
    except ValidationError:
        assume(False)
        raise
    result = opened(sealed(body, to=[party("USA"), party("COL")]))
    assert result.body == body


def _open_only_raises_envelope_error(data: bytes) -> None:
    try:
        opened(data)
    except EnvelopeError:
        return
    raise AssertionError("arbitrary input opened")


@FAST
@given(st.binary(max_size=4096))
def test_opening_arbitrary_bytes_raises_only_envelope_error(data: bytes) -> None:
    _open_only_raises_envelope_error(data)


@FAST
@given(json_values)
def test_opening_arbitrary_json_raises_only_envelope_error(value: Any) -> None:
    _open_only_raises_envelope_error(json.dumps(value).encode())


VALID = sealed()


@FAST
@given(key=st.sampled_from(sorted(as_json(VALID))), value=json_values)
def test_replacing_any_envelope_field_raises_only_envelope_error(key: str, value: Any) -> None:
    env = as_json(VALID)
    assume(env[key] != value)
    env[key] = value
    _open_only_raises_envelope_error(to_bytes(env))


@FAST
@given(key=st.sampled_from(sorted(header_of(as_json(VALID)))), value=json_values)
def test_replacing_any_header_field_raises_only_envelope_error(key: str, value: Any) -> None:
    env = as_json(VALID)
    header = header_of(env)
    assume(header[key] != value)
    header[key] = value
    env["protected"] = b64u(json.dumps(header).encode())
    _open_only_raises_envelope_error(to_bytes(env))
