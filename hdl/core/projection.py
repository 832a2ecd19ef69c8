"""The error registers and the error projection (spec 6.1): what ``UPD`` and ``DFAU`` add to
the dendrites ``U``.

Hidden neuron ``j`` takes ``sum_k B[j, k] ec[k]`` with the centered error
``ec[k] = n_out e[k] - esum`` (``spec.fixed.project_error``), formed without storing ``ec``
as ``n_out S_j - r_j esum``, ``S_j = sum_k B[j, k] e[k]``, ``r_j = sum_k B[j, k]``.
Output neuron ``k`` takes ``e[k]``. The value is shifted left by the layer's ``err_shift``
(``UPD``) or not at all (``DFAU``), saturated to ``state_bits + 1`` bits.

The entries of ``B`` arrive as the feedback port has them (``b_bits``,
:func:`~.feedback.feedback_layout`). ``b_bits >= 2``: signed integers, the form above with
a small product ``B[j, k] e[k]`` per entry. ``b_bits = 1`` is its instance with the entry of
bit ``beta`` the signed value ``B = 2 beta - 1`` (+-1): then ``S_j = 2 S - esum`` and
``r_j = 2 c - n_out``, ``S`` the sum of ``e[k]`` over the ``c`` outputs with
``B[j, k] = +1``, and ``n_out S_j - r_j esum = 2 (n_out S - c esum)``, which is what is
formed: no products by ``B``, no centered errors, no negations. (The factor 2 is no extra
scale: ``sum_k ec[k] = 0``, so ``sum_k B ec = 2 sum_{B=+1} ec``.)

The pipeline has four stages, whatever ``b_bits``: stage 1 sums ``S`` and ``c`` (or
``S_j`` and ``r_j``) from the ``B`` rows of the block (``b_row``, read three stages before
``q[L]``), stage 2 forms the projection, stage 3 (``q[L]``: ``layer``, ``block``, the
shift) picks the layer's value, stage 4 (X) shifts it; ``proj`` is then used by stage X2.
"""

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arith import cmul, shl_sat
from .feedback import feedback_layout
from .signature import ParamSignature, check_int

__all__ = ["ErrorProjection", "error_width"]


def error_width(timesteps):
    """Bits of an error ``e[k]``: ``|e| <= T`` (DFA: count differences; eRBP: -1..1)."""
    return timesteps.bit_length() + 1


class ErrorProjection(wiring.Component):
    """Error registers and the four-stage projection onto the lanes.

    Parameters
    ----------
    n_out, lanes, timesteps, state_bits : int
    n_blocks : int
        Blocks of the wider layer (the width of a block number).
    b_bits : int
        Bits of an entry of ``B`` (1: a sign, the default; ``>= 2``: a signed integer), as
        the feedback source's :class:`~.feedback.FeedbackPort` has them.

    Members
    -------
    load, e_in : In
        Load every error at once (eRBP, per step).
    set, set_k, set_value : In
        Load error ``set_k`` (DFA, per sample: one a cycle).
    sum : In(1)
        Form ``esum`` from the errors loaded before (the cycle before a ``UPD`` scan).
    b_row : In(feedback_layout(n_out, lanes, b_bits))
        The ``B`` rows of the block's lanes (stage 1).
    layer, block, err_shift_hid, err_shift_out, unshifted : In
        Stage 3 (``q[L]``): the block and its shift (``unshifted``: none, ``DFAU``).
    proj : Out(ArrayLayout(signed(state_bits + 1), lanes))
        Stage X's projections, one per lane.
    """

    class Signature(ParamSignature):
        def __init__(self, *, n_out, lanes, timesteps, state_bits, n_blocks, b_bits=1):
            for name, v in (("n_out", n_out), ("lanes", lanes), ("timesteps", timesteps),
                            ("n_blocks", n_blocks), ("b_bits", b_bits)):
                check_int(name, v, 1)
            check_int("state_bits", state_bits, 2)
            ew = error_width(timesteps)
            sb = state_bits
            super().__init__({
                "load": In(1), "e_in": In(data.ArrayLayout(signed(ew), n_out)),
                "set": In(1), "set_k": In(range(max(n_out, 2))), "set_value": In(signed(ew)),
                "sum": In(1),
                "b_row": In(feedback_layout(n_out, lanes, b_bits)),
                "layer": In(1), "block": In(range(max(n_blocks, 2))),
                "err_shift_hid": In(range(sb - 1)), "err_shift_out": In(range(sb - 1)),
                "unshifted": In(1),
                "proj": Out(data.ArrayLayout(signed(sb + 1), lanes)),
            }, n_out=n_out, lanes=lanes, timesteps=timesteps, state_bits=state_bits,
                n_blocks=n_blocks, b_bits=b_bits)

    def __init__(self, *, n_out, lanes, timesteps, state_bits, n_blocks, b_bits=1):
        super().__init__(self.Signature(n_out=n_out, lanes=lanes, timesteps=timesteps,
                                        state_bits=state_bits, n_blocks=n_blocks,
                                        b_bits=b_bits))

    def elaborate(self, platform):
        m = Module()
        sig = self.signature
        n_out, P, sb = sig.n_out, sig.lanes, sig.state_bits
        ew = error_width(sig.timesteps)
        e = Array(Signal(signed(ew), name=f"e{k}") for k in range(n_out))
        with m.If(self.load):
            m.d.sync += [e[k].eq(self.e_in[k]) for k in range(n_out)]
        with m.If(self.set):
            m.d.sync += e[self.set_k].eq(self.set_value)
        # ec is not stored: the hidden projection is formed from e and this sum
        esum = Signal(signed(ew + n_out.bit_length()))
        with m.If(self.sum):
            m.d.sync += esum.eq(sum(e))

        psh = Signal(range(sb - 1))
        m.d.sync += psh.eq(Mux(self.unshifted, 0,
                               Mux(self.layer, self.err_shift_out, self.err_shift_hid)))
        sums = self._sign_sums if sig.b_bits == 1 else self._signed_sums
        for l in range(P):
            ph_v = sums(m, l, e, esum)
            ph = Signal(ph_v.shape(), name=f"ph{l}")
            m.d.sync += ph.eq(ph_v)
            sel = Signal(ph_v.shape(), name=f"psel{l}")
            m.d.sync += sel.eq(Mux(self.layer, e[cmul(self.block, P) + l], ph))
            # Only sat(U + proj) is ever formed, with |U| < 2**(sb-1): clamping proj to
            # sb + 1 bits first changes nothing, and the shift then needs no wide result.
            pq = Signal(signed(sb + 1), name=f"proj{l}")
            m.d.sync += pq.eq(shl_sat(sel, psh, sb + 1))
            m.d.comb += self.proj[l].eq(pq)
        return m

    def _sign_sums(self, m, l, e, esum):
        """Stage 1 of lane ``l`` for ``B = +-1`` (``b_bits = 1``): ``S`` and ``c``
        registered; returns stage 2's ``2 (n_out S - c esum)``."""
        n_out, ew = self.signature.n_out, error_width(self.signature.timesteps)
        bits = self.b_row[l]
        S = Signal(signed(ew + n_out.bit_length()), name=f"S{l}")
        c = Signal(range(n_out + 1), name=f"c{l}")
        m.d.sync += [S.eq(sum(Mux(bits[k], e[k], 0) for k in range(n_out))),
                     c.eq(sum(bits[k] for k in range(n_out)))]
        return (cmul(S, n_out) - c * esum) << 1

    def _signed_sums(self, m, l, e, esum):
        """Stage 1 of lane ``l`` for signed entries (``b_bits >= 2``): ``S_j`` and ``r_j``
        registered; returns stage 2's ``n_out S_j - r_j esum``."""
        n_out, b = self.signature.n_out, self.signature.b_bits
        ew, nbl = error_width(self.signature.timesteps), n_out.bit_length()
        row = self.b_row[l]
        # Nothing wraps before the saturation: |e[k]| <= 2**(ew-1) (any value of a register;
        # T in use), |B[j,k]| <= 2**(b-1) and n_out < 2**nbl, so
        #   |S_j| <= n_out 2**(ew+b-2) < 2**(ew+nbl+b-2): fits signed(ew + nbl + b - 1),
        #   |r_j| <= n_out 2**(b-1) < 2**(nbl+b-1): fits signed(nbl + b);
        # stage 2's expression has Amaranth's exact width (its products and sums widen), ph
        # and psel take that width (wider than e), and shl_sat saturates from any width.
        S = Signal(signed(ew + nbl + b - 1), name=f"S{l}")
        r = Signal(signed(nbl + b), name=f"r{l}")
        m.d.sync += [S.eq(sum(row[k] * e[k] for k in range(n_out))),
                     r.eq(sum(row[k] for k in range(n_out)))]
        return cmul(S, n_out) - r * esum
