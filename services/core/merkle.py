"""RFC 9162 (Certificate Transparency 2.0) section 2.1 Merkle trees: hashes, audit paths,
consistency proofs and their verification, over a store of complete subtrees.

The tree keeps the hash of every complete (perfect, aligned) subtree as leaves are appended: at
most one new node per level per append. Any range hash the RFC's recursion asks for splits into
such subtrees, so proofs cost O(log n) lookups and a few hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeStore(Protocol):
    """Where complete subtree hashes live: level 0 are leaf hashes."""

    def size(self) -> int: ...

    def get(self, level: int, index: int) -> bytes: ...

    def put(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Write the (level, index, hash) nodes one append completes, leaf first."""
        ...


class MemoryStore:
    def __init__(self) -> None:
        self.levels: list[list[bytes]] = []

    def size(self) -> int:
        return len(self.levels[0]) if self.levels else 0

    def get(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def put(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        for level, index, value in nodes:
            while len(self.levels) <= level:
                self.levels.append([])
            row = self.levels[level]
            if index != len(row):
                raise ValueError("nodes are appended in order")
            row.append(value)


class MerkleTree:
    """An append-only RFC 9162 tree over a node store."""

    def __init__(self, store: NodeStore | None = None) -> None:
        self.store: NodeStore = store if store is not None else MemoryStore()

    @property
    def size(self) -> int:
        return self.store.size()

    def append_hash(self, lh: bytes) -> int:
        """Append a leaf by its leaf hash; return its index."""
        index = self.store.size()
        nodes = [(0, index, lh)]
        level, i, h = 0, index, lh
        while i & 1:  # this node completes its parent; its left sibling is an earlier append's
            h = node_hash(self.store.get(level, i - 1), h)
            level, i = level + 1, i >> 1
            nodes.append((level, i, h))
        self.store.put(nodes)
        return index

    def append(self, data: bytes) -> int:
        return self.append_hash(leaf_hash(data))

    def _range(self, a: int, b: int) -> bytes:
        """MTH(D[a:b]) for a range the RFC's recursion produces."""
        n = b - a
        if n == 1:
            return self.store.get(0, a)
        if n & (n - 1) == 0 and a % n == 0:  # a complete, aligned subtree: stored
            return self.store.get(n.bit_length() - 1, a // n)
        k = _split(n)
        return node_hash(self._range(a, a + k), self._range(a + k, b))

    def root(self, n: int | None = None) -> bytes:
        """MTH(D[0:n]), of the whole tree by default."""
        n = self.size if n is None else n
        if not 0 <= n <= self.size:
            raise ValueError(f"no tree of size {n}")
        return EMPTY_ROOT if n == 0 else self._range(0, n)

    def inclusion_proof(self, m: int, n: int | None = None) -> list[bytes]:
        """PATH(m, D[0:n]) (RFC 9162 section 2.1.3.1)."""
        n = self.size if n is None else n
        if not 0 <= m < n <= self.size:
            raise ValueError(f"no leaf {m} in a tree of size {n}")
        return self._path(m, 0, n)

    def _path(self, m: int, a: int, b: int) -> list[bytes]:
        n = b - a
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, a, a + k), self._range(a + k, b)]
        return [*self._path(m - k, a + k, b), self._range(a, a + k)]

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        """PROOF(m, D[0:n]) (RFC 9162 section 2.1.4.1)."""
        n = self.size if n is None else n
        if not 0 < m <= n <= self.size:
            raise ValueError(f"no consistency proof from {m} to {n}")
        return [] if m == n else self._subproof(m, 0, n, True)

    def _subproof(self, m: int, a: int, b: int, complete: bool) -> list[bytes]:
        n = b - a
        if m == n:
            return [] if complete else [self._range(a, b)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, a, a + k, complete), self._range(a + k, b)]
        return [*self._subproof(m - k, a + k, b, False), self._range(a, a + k)]


# -- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2): no tree needed --------------------


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``path`` proves leaf hash ``leaf`` at ``index`` in the tree of ``size``/``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """Whether ``path`` proves the tree of ``new_size``/``new_root`` extends ``old_size``."""
    if old_size == 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    proof = list(path)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of it
        proof = [old_root, *proof]
    if not proof:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0
