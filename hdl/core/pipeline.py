"""The block pipeline's token and its register stages ``q[1] .. q[L]`` and ``X``.

The sequencer (stage S0) issues at most one block a cycle into ``q[1]``; ``q[1]`` addresses
the weight memories and the rasters, ``q[L]`` every other per-block memory, so that all the
data of a block arrives together in stage X. Every stage starts from registers, so no path
runs from the state machine into the arithmetic.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .layouts import nblocks
from .signature import ParamSignature, check_int

__all__ = ["OP_DFAU", "OP_FIRE", "OP_INT", "OP_PRE", "OP_UPD", "BlockPipeline",
           "token_layout"]

# Operations of the scan pipeline's second stage.
OP_PRE, OP_INT, OP_FIRE, OP_UPD, OP_DFAU = range(5)


def token_layout(n_in, n_hid, n_out, timesteps, lanes) -> data.StructLayout:
    """One block in flight: what every pipeline stage carries."""
    nb1, nb2 = nblocks(n_hid, lanes), nblocks(n_out, lanes)
    w_words = (n_in * nb1, n_hid * nb2)
    return data.StructLayout({
        "valid": 1, "op": range(5), "layer": 1,
        "b": range(max(nb1, nb2, 2)),
        "saddr": range(max(nb1 + nb2, 2)),
        "waddr": range(max(max(w_words), 2)),
        "first": 1, "t": range(max(timesteps, 2)),
    })


class BlockPipeline(wiring.Component):
    """``latency + 1`` token registers: ``q[1] .. q[L]``, then stage X.

    Members
    -------
    issue : In(token)
        What S0 issues this cycle.
    q1, qL, x : Out(token)
        The tokens in ``q[1]``, ``q[L]`` and stage X (``q1`` is ``qL`` when ``L = 1``).
    drained : Out(1)
        No valid block in ``q[1] .. q[L]`` or X: FIRE's bookkeeping (stage Y) is complete
        by the end of this cycle.
    """

    class Signature(ParamSignature):
        def __init__(self, *, token, latency):
            check_int("latency", latency, 1)
            if not isinstance(token, data.StructLayout):
                raise TypeError(f"token must be a StructLayout, not {token!r}")
            super().__init__({"issue": In(token), "q1": Out(token), "qL": Out(token),
                              "x": Out(token), "drained": Out(1)},
                             token=token, latency=latency)

    def __init__(self, *, token, latency):
        super().__init__(self.Signature(token=token, latency=latency))

    def elaborate(self, platform):
        m = Module()
        tok, L = self.signature.token, self.signature.latency
        q = [self.issue] + [Signal(tok, name=f"q{i}") for i in range(1, L + 1)]
        for i in range(1, L + 1):
            m.d.sync += q[i].eq(q[i - 1])
        xs = Signal(tok, name="xs")
        m.d.sync += xs.eq(q[L])
        m.d.comb += [self.q1.eq(q[1]), self.qL.eq(q[L]), self.x.eq(xs),
                     self.drained.eq(~Cat(*[q[i].valid for i in range(1, L + 1)],
                                          xs.valid).any())]
        return m
