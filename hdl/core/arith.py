"""Arithmetic helpers of the core's datapaths (combinational expressions, no state)."""

from amaranth.hdl import Cat, Const, Mux, Value

__all__ = ["cmul", "ffs", "leak", "sat", "shl_sat"]


def cmul(x, c):
    """``x * c`` for a constant ``c >= 0`` as shifts and adds (no multiplier block)."""
    terms = [x << i for i in range(c.bit_length()) if (c >> i) & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)


def sat(x, lo, hi):
    """``x`` clamped to ``[lo, hi]``. When that is the whole range of a two's-complement
    width (every use here), overflow is read off the bits above it, not from two comparators
    (carry chains as long as ``x``)."""
    x = Value.cast(x)
    bits = hi.bit_length() + 1
    if lo == -(1 << (bits - 1)) and hi == (1 << (bits - 1)) - 1 and x.shape().signed:
        return x if len(x) <= bits else shl_sat(x, Const(0, 1), bits)
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def shl_sat(x, k, bits):
    """``x << k`` clamped to the range of ``signed(bits)``: overflow is any bit shifted into
    or past the sign position that differs from the sign (a thermometer mask of ``k``)."""
    x = Value.cast(x)
    n = len(x)
    kmax = 2 ** len(Value.cast(k)) - 1
    # bits of x that must equal the sign for x << k to fit: from bits - 1 - k upwards
    mask = Cat(*[Const(1) if bits - 1 - i <= 0 else (k >= bits - 1 - i) for i in range(n)])
    fits = ((x ^ x[-1].replicate(n)) & mask) == 0
    if kmax >= bits:                   # even -1 << k overflows once k >= bits
        fits = fits & ((k < bits) | (x == 0))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    shifted = (x << k)[:bits].as_signed() if kmax else x[:bits].as_signed()
    return Mux(fits, shifted, Mux(x[-1], lo, hi))


def leak(x, k):
    """``x - (x >> k)`` with an arithmetic shift (spec 2)."""
    return x - (x >> k)


def ffs(vec):
    """Index of the lowest set bit of ``vec`` (0 if none): a priority encoder, used on one
    block's ``P``-bit spike mask only (spike lists replace whole-layer vectors)."""
    idx = Const(0, range(max(len(vec), 2)))
    for i in reversed(range(len(vec))):
        idx = Mux(vec[i], i, idx)
    return idx
