"""The CRC-16 register (``hdl/link/crc.py``) against ``spec.protocol.crc16``."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.link.crc import CRC16
from spec import protocol as pr


def rtl_crcs(chunks, rng):
    """The register after each chunk (each begun with ``start``), bytes on random cycles."""
    dut = CRC16()
    out = []

    async def tb(ctx):
        for chunk in chunks:
            ctx.set(dut.start, 1)
            ctx.set(dut.en, 1)            # ignored while start
            ctx.set(dut.data, 0x5A)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for b in chunk:
                while rng.random() < 0.3:
                    ctx.set(dut.en, 0)
                    ctx.set(dut.data, int(rng.integers(0, 256)))
                    await ctx.tick()
                ctx.set(dut.en, 1)
                ctx.set(dut.data, b)
                await ctx.tick()
            ctx.set(dut.en, 0)
            out.append(ctx.get(dut.crc))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return out


def test_check_value():
    assert rtl_crcs([b"123456789", b""], np.random.default_rng(0)) == [0x29B1, 0xFFFF]


@pytest.mark.parametrize("seed", range(3))
def test_random_data_matches_crc16(seed):
    rng = np.random.default_rng(seed)
    chunks = [rng.integers(0, 256, int(rng.integers(0, 60))).astype(np.uint8).tobytes()
              for _ in range(20)]
    assert rtl_crcs(chunks, rng) == [pr.crc16(c) for c in chunks]
