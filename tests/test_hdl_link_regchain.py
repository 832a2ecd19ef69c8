# amaranth: UnusedElaboratable=no
"""The register chain (``hdl/link/regchain.py``) against a Python list of bits."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.core import reg_values, regs_layout
from hdl.link.regchain import RegisterChain
from spec.config import Config


def bits_of(layout, values):
    v = layout.const(values).as_bits()
    return [(v >> i) & 1 for i in range(layout.size)]


def test_bad_layout():
    with pytest.raises(TypeError, match="StructLayout"):
        RegisterChain(8, {})


@pytest.mark.parametrize("seed", range(2))
def test_random_rotations_match_a_bit_list(seed):
    cfg = Config()
    layout = regs_layout(cfg)
    dut = RegisterChain(layout, reg_values(cfg))
    rng = np.random.default_rng(seed)
    twin = bits_of(layout, reg_values(cfg))

    async def tb(ctx):
        assert ctx.get(dut.regs.as_value()) == sum(b << i for i, b in enumerate(twin))
        for _ in range(3 * layout.size):
            shift, din = rng.random() < 0.7, int(rng.integers(0, 2))
            assert ctx.get(dut.head) == twin[0]
            ctx.set(dut.shift, shift)
            ctx.set(dut.din, din)
            await ctx.tick()
            if shift:
                twin[:] = twin[1:] + [din]
            assert ctx.get(dut.regs.as_value()) == sum(b << i for i, b in enumerate(twin))
        # a whole rotation with din = head leaves the registers as they were
        before = list(twin)
        ctx.set(dut.shift, 1)
        for _ in range(layout.size):
            ctx.set(dut.din, ctx.get(dut.head))
            await ctx.tick()
        assert ctx.get(dut.regs.as_value()) == sum(b << i for i, b in enumerate(before))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
