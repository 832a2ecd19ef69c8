"""The error registers and the error projection (spec 6.1): what ``UPD`` and ``DFAU`` add to
the dendrites ``U``.

Hidden neuron ``j`` takes ``sum_k B[j, k] ec[k]`` with the centered error
``ec[k] = n_out e[k] - esum``. With ``B = +-1`` that is ``2 (n_out S - c esum)``, ``S`` the
sum of ``e[k]`` over the ``c`` outputs with ``B[j, k] = +1``: no centered errors are stored,
no negations. Output neuron ``k`` takes ``e[k]``. The value is shifted left by the layer's
``err_shift`` (``UPD``) or not at all (``DFAU``), saturated to ``state_bits + 1`` bits.

The pipeline has four stages: stage 1 sums ``S`` and ``c`` from the ``B`` rows of the block
(``b_row``, read three stages before ``q[L]``), stage 2 forms ``2 (n_out S - c esum)``,
stage 3 (``q[L]``: ``layer``, ``block``, the shift) picks the layer's value, stage 4 (X)
shifts it; ``proj`` is then used by stage X2.
"""

from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .arith import cmul, shl_sat
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

    Members
    -------
    load, e_in : In
        Load every error at once (eRBP, per step).
    set, set_k, set_value : In
        Load error ``set_k`` (DFA, per sample: one a cycle).
    sum : In(1)
        Form ``esum`` from the errors loaded before (the cycle before a ``UPD`` scan).
    b_row : In(ArrayLayout(unsigned(n_out), lanes))
        The ``B`` rows of the block's lanes (stage 1).
    layer, block, err_shift_hid, err_shift_out, unshifted : In
        Stage 3 (``q[L]``): the block and its shift (``unshifted``: none, ``DFAU``).
    proj : Out(ArrayLayout(signed(state_bits + 1), lanes))
        Stage X's projections, one per lane.
    """

    class Signature(ParamSignature):
        def __init__(self, *, n_out, lanes, timesteps, state_bits, n_blocks):
            for name, v in (("n_out", n_out), ("lanes", lanes), ("timesteps", timesteps),
                            ("n_blocks", n_blocks)):
                check_int(name, v, 1)
            check_int("state_bits", state_bits, 2)
            ew = error_width(timesteps)
            sb = state_bits
            super().__init__({
                "load": In(1), "e_in": In(data.ArrayLayout(signed(ew), n_out)),
                "set": In(1), "set_k": In(range(max(n_out, 2))), "set_value": In(signed(ew)),
                "sum": In(1),
                "b_row": In(data.ArrayLayout(unsigned(n_out), lanes)),
                "layer": In(1), "block": In(range(max(n_blocks, 2))),
                "err_shift_hid": In(range(sb - 1)), "err_shift_out": In(range(sb - 1)),
                "unshifted": In(1),
                "proj": Out(data.ArrayLayout(signed(sb + 1), lanes)),
            }, n_out=n_out, lanes=lanes, timesteps=timesteps, state_bits=state_bits,
                n_blocks=n_blocks)

    def __init__(self, *, n_out, lanes, timesteps, state_bits, n_blocks):
        super().__init__(self.Signature(n_out=n_out, lanes=lanes, timesteps=timesteps,
                                        state_bits=state_bits, n_blocks=n_blocks))

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
        for l in range(P):
            bits = self.b_row[l]
            S = Signal(signed(ew + n_out.bit_length()), name=f"S{l}")
            c = Signal(range(n_out + 1), name=f"c{l}")
            m.d.sync += [S.eq(sum(Mux(bits[k], e[k], 0) for k in range(n_out))),
                         c.eq(sum(bits[k] for k in range(n_out)))]
            ph_v = (cmul(S, n_out) - c * esum) << 1
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
