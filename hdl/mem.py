"""The one memory primitive the cores use: a simple dual-port (one read, one write) RAM.

Every memory of the cores goes through :class:`WordMemory` (or a replacement with the same
signature passed as ``memory=`` to the core), so a board can substitute a vendor primitive
(iCE40 SPRAM, ECP5 DP16KD, ...) without touching the core. The contract is that of a
block RAM: synchronous read, ``rd_data`` holds while ``rd_en`` is low, and a write takes
effect at the clock edge. The read latency is one cycle unless the caller asks for more
(``read_latency``): a caller that can wait lets a board register a deep memory's output and
the multiplexer behind its blocks (``boards/memory.py``), which is what sets the clock of a
large weight memory.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["WordMemory", "delay"]


class WordMemory(wiring.Component):
    """One-read, one-write synchronous RAM.

    Parameters
    ----------
    shape : shape-castable
        Word shape (an integer shape or an ``amaranth.lib.data`` layout).
    depth : int
        Number of words.
    transparent : bool
        If true, a read of the address written in the same cycle returns the new word
        (read-after-write forwarding). The cores need this where a read-modify-write
        pipeline may revisit one address on consecutive cycles.
    init : iterable of int, optional
        Initial contents.
    single_port : bool
        A promise by the user: whenever the memory is written, the word read in the same
        cycle is never used. A board may then implement it with a single-port RAM (a write
        cycle takes the port; the read data of that cycle is undefined). Ignored here.
    read_latency : int
        Cycles from ``rd_addr`` to ``rd_data`` (at least 1). Here the extra cycles are
        registers after the RAM's read port. ``rd_en`` enables the whole read pipeline: while
        it is low nothing moves, so ``rd_data`` is that of the address presented
        ``read_latency`` enabled cycles before.

    Attributes
    ----------
    rd_addr, rd_en : In
        Read address and enable; ``rd_data`` is valid ``read_latency`` cycles after, and
        holds while ``rd_en`` is low.
    rd_data : Out(shape)
    wr_addr, wr_data, wr_en : In
        Write port.
    """

    def __init__(self, shape, depth: int, *, transparent: bool = False, init=(),
                 single_port: bool = False, read_latency: int = 1):
        if not (isinstance(read_latency, int) and read_latency >= 1):
            raise ValueError(f"read_latency must be an integer >= 1, not {read_latency!r}")
        self._shape = shape
        self.read_latency = read_latency
        self._depth = max(1, depth)
        self._transparent = transparent
        self.single_port = single_port
        self._init = list(init)
        super().__init__({
            "rd_addr": In(range(self._depth)),
            "rd_en": In(1, init=1),
            "rd_data": Out(shape),
            "wr_addr": In(range(self._depth)),
            "wr_data": In(shape),
            "wr_en": In(1),
        })

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def shape(self):
        return self._shape

    def memory_attrs(self) -> dict:
        """Attributes of the inner ``Memory`` (none here; a board's subclass may tag it for
        its synthesis flow)."""
        return {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._shape, depth=self._depth, init=self._init,
                                        attrs=self.memory_attrs())
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,) if self._transparent else ())
        m.d.comb += [
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
            rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en),
        ]
        m.d.comb += self.rd_data.eq(delay(m, rd.data, self.read_latency - 1, "rd_q",
                                          en=self.rd_en))
        return m


def delay(m, value, cycles: int, name: str = "dly", en=None):
    """``value`` through ``cycles`` registers in ``m``'s ``sync`` domain (itself if 0),
    which load only while ``en`` (if given) is high."""
    for i in range(cycles):
        q = Signal(value.shape(), name=f"{name}{i}")
        if en is None:
            m.d.sync += q.eq(value)
        else:
            with m.If(en):
                m.d.sync += q.eq(value)
        value = q
    return value
