"""Memory factories for the boards: what :class:`hdl.mem.WordMemory` becomes in silicon.

The cores ask for every memory through a factory with the ``WordMemory`` signature. The
generic one describes a block RAM with Amaranth's ``Memory``; Yosys then maps it, but for a
read port that is not transparent it must keep *read-before-write* behaviour when the same
word is read and written in one cycle, and neither iCE40 nor ECP5 block RAMs promise that:
Yosys adds a write-data register, an address comparator and a bypass multiplexer per memory
(measured: 73 flip-flops and 39 LUTs for a 128 x 32 memory on iCE40). The core never uses a
word read in the cycle that word is written (``hdl/core.py`` documents why for every
memory; the host must not read and write the weight port in one cycle), so the boards mark
those memories with the attribute :data:`RW_UNDEF_ATTR` and their Yosys script declares the
collision undefined (:data:`YOSYS_SCRIPT_AFTER_READ`): then nothing is added.

On the iCE40UP5K, memories the core declares ``single_port`` (never usefully read while
written: the DFA raster and the feedback matrix) go to the SPRAM blocks
(``SB_SPRAM256KA``, 16K x 16, which Yosys does not infer), so they cost no block RAM.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Mux, Shape, Signal

from hdl.mem import WordMemory

__all__ = ["RW_UNDEF_ATTR", "YOSYS_SCRIPT_AFTER_READ", "BoardMemory", "ICE40Memory",
           "SPRAM_WORDS", "SPRAM_BITS"]

#: Attribute on a ``Memory`` whose read port may return anything when the word it reads is
#: written in the same cycle.
RW_UNDEF_ATTR = "snn_rw_undef"

#: Yosys commands (after ``read_rtlil``) that turn :data:`RW_UNDEF_ATTR` into the read
#: port's collision mask. ``memory_collect`` first gathers each memory into one ``$mem_v2``
#: cell, which keeps the memory's attributes (``proc`` before it, as synthesis would).
YOSYS_SCRIPT_AFTER_READ = "\n".join([
    "proc",
    "memory_collect",
    f"setparam -set RD_COLLISION_X_MASK 1'1 a:{RW_UNDEF_ATTR}",
])

SPRAM_WORDS = 16384
SPRAM_BITS = 16


class BoardMemory(WordMemory):
    """``WordMemory`` whose non-transparent read port has undefined read-write collisions.

    Same ports and simulation behaviour as :class:`hdl.mem.WordMemory`; only the synthesis
    netlist differs (and only with :data:`YOSYS_SCRIPT_AFTER_READ` in the Yosys script).
    """

    def memory_attrs(self) -> dict:
        return {} if self._transparent else {RW_UNDEF_ATTR: 1}


class SPRAMMemory(WordMemory):
    """A ``single_port`` memory in ``SB_SPRAM256KA`` blocks (iCE40UP5K only).

    The one port writes when ``wr_en`` is high and reads otherwise; wide words use several
    blocks side by side, deep ones several blocks stacked (with an output multiplexer).
    Synthesis only: the Amaranth simulator has no model of the primitive.
    """

    @staticmethod
    def blocks_for(shape, depth):
        width = _width(shape)
        return -(-width // SPRAM_BITS) * -(-depth // SPRAM_WORDS)

    def elaborate(self, platform):
        m = Module()
        width = _width(self._shape)
        cols = -(-width // SPRAM_BITS)
        rows = -(-self._depth // SPRAM_WORDS)
        addr = Signal(max(14, len(self.rd_addr)))
        m.d.comb += addr.eq(Mux(self.wr_en, self.wr_addr, self.rd_addr))
        row = addr[14:] if rows > 1 else Const(0, 1)
        row_q = Signal.like(row)
        m.d.sync += row_q.eq(row)
        wdata = Signal(cols * SPRAM_BITS)
        m.d.comb += wdata.eq(self.wr_data)
        outs = []
        for r in range(rows):
            dout = Signal(cols * SPRAM_BITS, name=f"dout{r}")
            sel = (row == r) if rows > 1 else Const(1, 1)
            for c in range(cols):
                m.submodules[f"spram_{r}_{c}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr[:14],
                    i_DATAIN=wdata[c * SPRAM_BITS:(c + 1) * SPRAM_BITS],
                    i_MASKWREN=Const(0b1111, 4),
                    i_WREN=self.wr_en,
                    i_CHIPSELECT=sel & (self.wr_en | self.rd_en),
                    i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1), i_POWEROFF=Const(1, 1),
                    o_DATAOUT=dout[c * SPRAM_BITS:(c + 1) * SPRAM_BITS],
                )
            outs.append(dout)
        data = outs[0]
        for r in range(1, rows):
            data = Mux(row_q == r, outs[r], data)
        m.d.comb += self.rd_data.eq(data[:width])
        return m


def _width(shape):
    return Shape.cast(shape).width


class ICE40Memory:
    """Memory factory for the iCE40UP5K: SPRAM for ``single_port`` memories while blocks
    remain (``spram_blocks``, 4 on the UP5K), :class:`BoardMemory` for everything else.

    A factory object, not a class, because it counts the SPRAM blocks it has handed out
    (:attr:`spram_used`) across all the memories of one elaboration.
    """

    def __init__(self, spram_blocks: int = 4):
        self.spram_blocks = spram_blocks
        self.spram_used = 0
        self.placed = []                  # (shape width, depth, "spram" | "bram")

    def __call__(self, shape, depth, *, transparent=False, init=(), single_port=False):
        width = _width(shape)
        n = SPRAMMemory.blocks_for(shape, max(1, depth))
        if (single_port and not transparent and not list(init)
                and self.spram_used + n <= self.spram_blocks):
            self.spram_used += n
            self.placed.append((width, depth, "spram"))
            return SPRAMMemory(shape, depth, single_port=True)
        self.placed.append((width, depth, "bram"))
        return BoardMemory(shape, depth, transparent=transparent, init=init,
                           single_port=single_port)
