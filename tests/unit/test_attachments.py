"""The attachment chunk format (docs/envelope.md section 13): every way of damaging a ciphertext
is detected, with its chunk, and a file opens only whole, under its own key."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.attachment import AttachmentManifest
from services.core.attachments import (
    CHUNK_SIZE,
    TAG_LEN,
    AttachmentError,
    AttachmentFault,
    chunk_count,
    ciphertext_size,
    new_key,
    nonce,
    open_chunks,
    seal_stream,
    split_ciphertext,
)
from services.core.encoding import b64u

# sizes around the chunk boundaries, where truncation and padding bugs live
SIZES = st.one_of(
    st.sampled_from(
        [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 5]
    ),
    st.integers(min_value=0, max_value=4 * CHUNK_SIZE),
)


def sealed(data: bytes) -> tuple[AttachmentManifest, list[bytes]]:
    sink = io.BytesIO()
    out = seal_stream(
        io.BytesIO(data), len(data), sink, name="scan.pdf", media_type="application/pdf"
    )
    assert out.ciphertext_size == ciphertext_size(len(data)) == len(sink.getvalue())
    return out.manifest, split_ciphertext(sink.getvalue(), len(data))


def opened(manifest: AttachmentManifest, chunks: list[bytes]) -> bytes:
    return b"".join(open_chunks(manifest, chunks))


def refused(manifest: AttachmentManifest, chunks: list[bytes]) -> AttachmentError:
    with pytest.raises(AttachmentError) as err:
        opened(manifest, chunks)
    assert err.value.fault is AttachmentFault.CORRUPT
    return err.value


def content(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(size))


@settings(max_examples=40, deadline=None)
@given(SIZES)
def test_a_file_opens_whole_under_its_key(size: int) -> None:
    manifest, chunks = sealed(content(size))
    assert len(chunks) == chunk_count(size)
    assert all(len(c) == CHUNK_SIZE + TAG_LEN for c in chunks[:-1])
    assert opened(manifest, chunks) == content(size)


@settings(max_examples=40, deadline=None)
@given(SIZES.filter(lambda n: n > CHUNK_SIZE), st.data())
def test_truncation_at_a_chunk_boundary_is_detected(size: int, data: st.DataObject) -> None:
    manifest, chunks = sealed(content(size))
    keep = data.draw(st.integers(min_value=0, max_value=len(chunks) - 1))
    err = refused(manifest, chunks[:keep])
    # the chunk that should have been last was not: either too few, or its flag is wrong
    assert "chunks" in err.detail or "does not decrypt" in err.detail


@settings(max_examples=40, deadline=None)
@given(SIZES, st.data())
def test_truncation_inside_a_chunk_is_detected(size: int, data: st.DataObject) -> None:
    manifest, chunks = sealed(content(size))
    at = data.draw(st.integers(min_value=0, max_value=len(chunks) - 1))
    cut = data.draw(st.integers(min_value=0, max_value=len(chunks[at]) - 1))
    refused(manifest, [*chunks[:at], chunks[at][:cut]])


@settings(max_examples=40, deadline=None)
@given(SIZES.filter(lambda n: n > CHUNK_SIZE), st.data())
def test_reordered_chunks_are_detected(size: int, data: st.DataObject) -> None:
    manifest, chunks = sealed(content(size))
    order = data.draw(st.permutations(range(len(chunks))).filter(lambda p: list(p) != sorted(p)))
    refused(manifest, [chunks[i] for i in order])


@settings(max_examples=40, deadline=None)
@given(SIZES, st.data())
def test_a_duplicated_chunk_is_detected(size: int, data: st.DataObject) -> None:
    manifest, chunks = sealed(content(size))
    i = data.draw(st.integers(min_value=0, max_value=len(chunks) - 1))
    where = data.draw(st.integers(min_value=0, max_value=len(chunks)))
    refused(manifest, [*chunks[:where], chunks[i], *chunks[where:]])


@settings(max_examples=60, deadline=None)
@given(SIZES, st.data())
def test_any_flipped_bit_is_detected(size: int, data: st.DataObject) -> None:
    manifest, chunks = sealed(content(size))
    i = data.draw(st.integers(min_value=0, max_value=len(chunks) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=len(chunks[i]) * 8 - 1))
    flipped = bytearray(chunks[i])
    flipped[bit // 8] ^= 1 << (bit % 8)
    err = refused(manifest, [*chunks[:i], bytes(flipped), *chunks[i + 1 :]])
    assert f"chunk {i} does not decrypt" == err.detail


@settings(max_examples=30, deadline=None)
@given(SIZES)
def test_the_wrong_key_opens_nothing(size: int) -> None:
    manifest, chunks = sealed(content(size))
    other = manifest.model_copy(update={"key": b64u(new_key())})
    assert refused(other, chunks).detail == "chunk 0 does not decrypt"


@settings(max_examples=20, deadline=None)
@given(SIZES.filter(lambda n: n > 0))
def test_a_chunk_from_another_file_under_the_same_place_is_detected(size: int) -> None:
    manifest, chunks = sealed(content(size))
    _, other = sealed(bytes(reversed(content(size))))
    refused(manifest, [other[0], *chunks[1:]])


def test_a_different_ciphertext_under_the_same_key_fails_the_digest() -> None:
    """The signed digest commits the sender to one ciphertext: the same key re-used for other
    bytes (which a sender must never do) still does not pass as the named attachment."""
    key = new_key()
    a = seal_stream(
        io.BytesIO(b"photo A"), 7, io.BytesIO(), name="a.png", media_type="image/png", key=key
    )
    sink = io.BytesIO()
    seal_stream(io.BytesIO(b"photo B"), 7, sink, name="a.png", media_type="image/png", key=key)
    err = refused(a.manifest, [sink.getvalue()])
    assert err.detail == "ciphertext digest differs"


def test_the_nonce_is_an_11_byte_counter_and_a_last_flag() -> None:
    assert nonce(0, False) == bytes(12)
    assert nonce(1, True) == bytes(10) + b"\x01\x01"
    assert nonce(2**88 - 1, False) == b"\xff" * 11 + b"\x00"
    with pytest.raises(ValueError):
        nonce(2**88, False)


def test_sizes_the_manifest_signs_must_be_the_files() -> None:
    with pytest.raises(ValueError, match="shorter"):
        seal_stream(io.BytesIO(b"abc"), 4, io.BytesIO(), name="x", media_type="text/plain")
    with pytest.raises(ValueError, match="longer"):
        seal_stream(io.BytesIO(b"abcde"), 4, io.BytesIO(), name="x", media_type="text/plain")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.png", "C:\\x.png", "..", " x.png", "a\nb"])
def test_a_manifest_refuses_a_name_that_is_a_path(name: str) -> None:
    manifest, _ = sealed(b"x")
    with pytest.raises(ValueError):
        AttachmentManifest.model_validate({**manifest.model_dump(), "name": name})


def test_a_manifest_refuses_a_key_that_is_not_32_bytes_canonically() -> None:
    manifest, _ = sealed(b"x")
    good = manifest.model_dump()
    for key in (good["key"][:-1], good["key"] + "A", good["key"][:-1] + "B"):
        with pytest.raises(ValueError):
            AttachmentManifest.model_validate({**good, "key": key})


def test_a_body_naming_two_attachments_of_one_name_is_refused_before_sealing() -> None:
    # model_copy skips validation: with_attachments must check the field as a recipient does
    from schemas.registry import example_body
    from services.node.application.errors import ApplicationError
    from services.node.application.plumbing import with_attachments

    body = example_body("info.trafficking_routes")
    one, _ = sealed(content(10))
    other, _ = sealed(content(20))  # another key: another ciphertext, the same name
    assert with_attachments(body, [one]).attachments == [one]
    with pytest.raises(ApplicationError) as err:
        with_attachments(body, [one, other])
    assert err.value.code == "attachment.invalid"
    assert "share a name" in err.value.params["problem"]


def test_a_file_that_changes_while_sealed_leaves_nothing(tmp_path: Path) -> None:
    from services.node.attachments import AttachmentSourceError, AttachmentStore

    src = tmp_path / "growing.bin"
    src.write_bytes(content(100))
    store = AttachmentStore(tmp_path / "store")
    real_stat = Path.stat

    def stale_stat(self: Path, **kw: object) -> os.stat_result:
        st = real_stat(self, **kw)  # type: ignore[arg-type]
        if self != src:
            return st
        return os.stat_result((st.st_mode, *st[1:6], 40, *st[7:]))  # what it was before

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "stat", stale_stat)
        with pytest.raises(AttachmentSourceError) as err:
            store.prepare(src)
    assert "longer than 40 bytes" in err.value.problem
    assert list(store.root.iterdir()) == []
    with pytest.raises(AttachmentSourceError) as err:
        store.prepare(tmp_path / "gone.bin")
    assert err.value.problem == "No such file or directory"
