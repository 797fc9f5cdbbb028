"""RFC 9162 Merkle trees: the project's tree against the RFC's own recursive definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

# -- RFC 9162 section 2.1, written as the RFC states it (lists, recursion, no shortcuts) -------


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = k_of(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = k_of(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True)


# The test vector of the Certificate Transparency reference implementations (RFC 6962 trees
# hash exactly like RFC 9162's): eight leaves and the root of every prefix.
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def tree_of(leaves: list[bytes]) -> MerkleTree:
    t = MerkleTree()
    for leaf in leaves:
        t.append(leaf)
    return t


def test_roots_match_the_certificate_transparency_vectors() -> None:
    t = MerkleTree()
    assert t.root() == EMPTY_ROOT == mth([])
    for i, leaf in enumerate(CT_LEAVES):
        t.append(leaf)
        assert t.root().hex() == CT_ROOTS[i] == mth(CT_LEAVES[: i + 1]).hex()


def test_every_root_path_and_proof_equals_the_rfc_definition_up_to_40_leaves() -> None:
    leaves = [f"event {i}".encode() for i in range(40)]
    t = tree_of(leaves)
    for n in range(1, 41):
        d = leaves[:n]
        assert t.root(n) == mth(d)
        for m in range(n):
            assert t.inclusion_proof(m, n) == path(m, d)
            assert verify_inclusion(leaf_hash(d[m]), m, n, path(m, d), mth(d))
        for m in range(1, n + 1):
            assert t.consistency_proof(m, n) == ([] if m == n else proof(m, d))
            assert verify_consistency(m, n, mth(leaves[:m]), mth(d), t.consistency_proof(m, n))


def test_a_changed_leaf_path_index_or_size_fails_verification() -> None:
    leaves = [bytes([i]) * 3 for i in range(13)]
    t = tree_of(leaves)
    root, p = t.root(), t.inclusion_proof(5)
    assert verify_inclusion(leaf_hash(leaves[5]), 5, 13, p, root)
    assert not verify_inclusion(leaf_hash(b"forged"), 5, 13, p, root)
    assert not verify_inclusion(leaf_hash(leaves[5]), 6, 13, p, root)
    bigger = tree_of([*leaves, b"next"])  # the same path does not prove it in another tree
    assert not verify_inclusion(leaf_hash(leaves[5]), 5, 14, p, bigger.root())
    assert not verify_inclusion(leaf_hash(leaves[12]), 12, 14, t.inclusion_proof(12), root)
    assert not verify_inclusion(leaf_hash(leaves[5]), 5, 13, [p[0][::-1], *p[1:]], root)
    assert not verify_inclusion(leaf_hash(leaves[5]), 5, 13, p[:-1], root)


def test_a_rewritten_history_fails_the_consistency_proof() -> None:
    leaves = [bytes([i]) for i in range(20)]
    honest = tree_of(leaves)
    old_root = honest.root(7)
    forked = tree_of([*leaves[:3], b"rewritten", *leaves[4:]])
    assert verify_consistency(7, 20, old_root, honest.root(), honest.consistency_proof(7))
    assert not verify_consistency(7, 20, old_root, forked.root(), forked.consistency_proof(7))
    assert not verify_consistency(7, 20, old_root, honest.root(), honest.consistency_proof(7)[1:])
    assert not verify_consistency(8, 7, old_root, honest.root(), [])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_proofs_of_any_tree_verify(leaves: list[bytes], data: st.DataObject) -> None:
    t = tree_of(leaves)
    n = len(leaves)
    m = data.draw(st.integers(0, n - 1))
    assert verify_inclusion(leaf_hash(leaves[m]), m, n, t.inclusion_proof(m), t.root())
    old = data.draw(st.integers(1, n))
    assert verify_consistency(old, n, t.root(old), t.root(), t.consistency_proof(old))


def test_bad_requests_are_refused() -> None:
    t = tree_of([b"a", b"b"])
    with pytest.raises(ValueError):
        t.inclusion_proof(2)
    with pytest.raises(ValueError):
        t.consistency_proof(0)
    with pytest.raises(ValueError):
        t.root(3)
