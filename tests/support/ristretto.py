"""A slow, independent RFC 9497 VOPRF (ristretto255-SHA512) for checking the RFC's vectors.

Plain integers, straight from the RFCs: ristretto255 (RFC 9496 section 4), expand_message_xmd
(RFC 9380 section 5.3.1), and RFC 9497's Blind, ComputeComposites, GenerateProof, VerifyProof and
Finalize. Test code only: not constant time, and never used by the project itself. It lets the
tests reproduce the vectors' ``Blind`` and ``Proof`` bytes, which the ``voprf`` package cannot
(it draws its own random scalars), and verify that package's proofs independently.
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
CONTEXT = b"OPRFV1-\x01-ristretto255-SHA512"
BASE = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def _neg(x: int) -> bool:
    return x % P % 2 == 1


def _abs(x: int) -> int:
    return -x % P if _neg(x) else x % P


def _sqrt_ratio_m1(u: int, v: int) -> tuple[bool, int]:
    r = (u * pow(v, 3, P)) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    check = v * r * r % P
    correct, flipped = check == u % P, check == -u % P
    flipped_i = check == -u * SQRT_M1 % P
    if flipped or flipped_i:
        r = r * SQRT_M1 % P
    return correct or flipped, _abs(r)


SQRT_M1 = _abs(pow(2, (P - 1) // 4, P))
# RFC 9496 section 4.1 gives the odd ("negative") root here, not the one _sqrt_ratio_m1 returns
SQRT_AD_MINUS_ONE = P - _sqrt_ratio_m1(-D - 1, 1)[1]
INVSQRT_A_MINUS_D = _sqrt_ratio_m1(1, -1 - D)[1]
ONE_MINUS_D_SQ = (1 - D * D) % P
D_MINUS_ONE_SQ = (D - 1) ** 2 % P


def decode(data: bytes) -> Point:
    s = int.from_bytes(data, "little")
    if len(data) != 32 or s >= P or _neg(s):
        raise ValueError("not a canonical encoding")
    ss = s * s % P
    u1, u2 = (1 - ss) % P, (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 * u1) - u2_sqr) % P
    was_square, invsqrt = _sqrt_ratio_m1(1, v * u2_sqr % P)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x * v % P
    x = _abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square or _neg(t) or y == 0:
        raise ValueError("not a ristretto255 element")
    return x, y, 1, t


def encode(point: Point) -> bytes:
    x0, y0, z0, t0 = point
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = _sqrt_ratio_m1(1, u1 * u2 * u2 % P)
    den1, den2 = invsqrt * u1 % P, invsqrt * u2 % P
    z_inv = den1 * den2 * t0 % P
    rotate = _neg(t0 * z_inv)
    x, y = (y0 * SQRT_M1 % P, x0 * SQRT_M1 % P) if rotate else (x0, y0)
    den_inv = den1 * INVSQRT_A_MINUS_D % P if rotate else den2
    if _neg(x * z_inv):
        y = -y % P
    return _abs(den_inv * (z0 - y)).to_bytes(32, "little")


def add(p: Point, q: Point) -> Point:
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a, b = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    c, d = t1 * 2 * D * t2 % P, z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % P, g * h % P, f * g % P, e * h % P


def mul(k: int, p: Point) -> Point:
    out: Point = (0, 1, 1, 0)
    while k:
        if k & 1:
            out = add(out, p)
        p, k = add(p, p), k >> 1
    return out


def _map(t: int) -> Point:
    r = SQRT_M1 * t * t % P
    u = (r + 1) * ONE_MINUS_D_SQ % P
    v = (-1 - r * D) * (r + D) % P
    was_square, s = _sqrt_ratio_m1(u, v)
    c = -1 if was_square else r
    if not was_square:
        s = -_abs(s * t) % P
    n = (c * (r - 1) * D_MINUS_ONE_SQ - v) % P
    w0, w1 = 2 * s * v % P, n * SQRT_AD_MINUS_ONE % P
    w2, w3 = (1 - s * s) % P, (1 + s * s) % P
    return w0 * w3 % P, w2 * w1 % P, w1 * w3 % P, w0 * w2 % P


def expand_message_xmd(msg: bytes, dst: bytes, length: int = 64) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512, for lengths up to 64 bytes (one block)."""
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(bytes(128) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime)
    return hashlib.sha512(b0.digest() + b"\x01" + dst_prime).digest()[:length]


def hash_to_group(msg: bytes) -> Point:
    uniform = expand_message_xmd(msg, b"HashToGroup-" + CONTEXT)
    halves = (int.from_bytes(uniform[i : i + 32], "little") % 2**255 % P for i in (0, 32))
    return add(*(_map(t) for t in halves))


def hash_to_scalar(msg: bytes) -> int:
    return int.from_bytes(expand_message_xmd(msg, b"HashToScalar-" + CONTEXT), "little") % L


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _composites(pk: bytes, blinded: list[bytes], evaluated: list[bytes]) -> tuple[Point, Point]:
    seed = hashlib.sha512(_lp(pk) + _lp(b"Seed-" + CONTEXT)).digest()
    m: Point | None = None
    z: Point | None = None
    for i, (c, d) in enumerate(zip(blinded, evaluated, strict=True)):
        di = hash_to_scalar(_lp(seed) + i.to_bytes(2, "big") + _lp(c) + _lp(d) + b"Composite")
        mc, zd = mul(di, decode(c)), mul(di, decode(d))
        m, z = (mc, zd) if m is None or z is None else (add(m, mc), add(z, zd))
    assert m is not None and z is not None
    return m, z


def _challenge(pk: bytes, m: Point, z: Point, t2: Point, t3: Point) -> int:
    parts = b"".join(_lp(x) for x in (pk, encode(m), encode(z), encode(t2), encode(t3)))
    return hash_to_scalar(parts + b"Challenge")


def public_key(sk: int) -> bytes:
    return encode(mul(sk, decode(BASE)))


def blind(data: bytes, r: int) -> bytes:
    return encode(mul(r, hash_to_group(data)))


def generate_proof(sk: int, blinded: list[bytes], evaluated: list[bytes], r: int) -> bytes:
    pk = public_key(sk)
    m, z = _composites(pk, blinded, evaluated)
    c = _challenge(pk, m, z, mul(r, decode(BASE)), mul(r, m))
    s = (r - c * sk) % L
    return c.to_bytes(32, "little") + s.to_bytes(32, "little")


def verify_proof(pk: bytes, blinded: list[bytes], evaluated: list[bytes], proof: bytes) -> bool:
    c, s = int.from_bytes(proof[:32], "little"), int.from_bytes(proof[32:], "little")
    m, z = _composites(pk, blinded, evaluated)
    t2 = add(mul(s, decode(BASE)), mul(c, decode(pk)))
    t3 = add(mul(s, m), mul(c, z))
    return _challenge(pk, m, z, t2, t3) == c


def finalize(data: bytes, r: int, evaluated: bytes) -> bytes:
    unblinded = encode(mul(pow(r, -1, L), decode(evaluated)))
    return hashlib.sha512(_lp(data) + _lp(unblinded) + b"Finalize").digest()
