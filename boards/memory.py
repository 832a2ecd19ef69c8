"""Memory factories for the boards: what :class:`hdl.mem.WordMemory` becomes in silicon.

The cores ask for every memory through a factory with the ``WordMemory`` signature. The
generic one describes a block RAM with Amaranth's ``Memory``; Yosys then maps it, but for a
read port that is not transparent it must keep *read-before-write* behaviour when the same
word is read and written in one cycle, and neither iCE40 nor ECP5 block RAMs promise that:
Yosys adds a write-data register, an address comparator and a bypass multiplexer per memory
(measured: 73 flip-flops and 39 LUTs for a 128 x 32 memory on iCE40). The core never uses a
word read in the cycle that word is written (``hdl/core/__init__.py`` documents why for every
memory; the host must not read and write the weight port in one cycle), so the boards mark
those memories with the attribute :data:`RW_UNDEF_ATTR` and their Yosys script declares the
collision undefined (:data:`YOSYS_SCRIPT_AFTER_READ`): then nothing is added.

On the iCE40UP5K, memories the core declares ``single_port`` (never usefully read while
written: the DFA raster and the feedback matrix) go to the SPRAM blocks
(``SB_SPRAM256KA``, 16K x 16, which Yosys does not infer), so they cost no block RAM.

On the ECP5 boards the weight memories are deep (50,176 words on the ULX3S): one inferred
memory becomes about a hundred DP16KD blocks whose outputs meet in a multiplexer, and the
block's clock-to-output (about 6 ns without its output register) plus that multiplexer plus
the read-modify-write arithmetic set the clock. The core asks for them with a read latency
of 3, and :class:`BankedMemory` spends it: banks of :data:`BANK_WORDS` words, each bank's
output registered next to its blocks, then the multiplexer over the banks, registered.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Shape, Signal, Value
from amaranth.lib.memory import Memory

from hdl.mem import WordMemory, delay

__all__ = ["RW_UNDEF_ATTR", "YOSYS_SCRIPT_AFTER_READ", "BoardMemory", "BankedMemory",
           "ICE40Memory", "ecp5_memory", "SPRAM_WORDS", "SPRAM_BITS", "BANK_WORDS",
           "LUTRAM_WORDS"]

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
#: Words per bank of :class:`BankedMemory` (2K x 9 is a DP16KD's deepest byte-wide shape).
BANK_WORDS = 2048


class BoardMemory(WordMemory):
    """``WordMemory`` whose non-transparent read port has undefined read-write collisions.

    Same ports and simulation behaviour as :class:`hdl.mem.WordMemory`; only the synthesis
    netlist differs (and only with :data:`YOSYS_SCRIPT_AFTER_READ` in the Yosys script).
    ``ram_style`` (``"distributed"``, ``"block"``) is passed to Yosys' memory mapper.
    """

    def __init__(self, *args, ram_style=None, **kw):
        super().__init__(*args, **kw)
        self.ram_style = ram_style

    def memory_attrs(self) -> dict:
        attrs = {} if self._transparent else {RW_UNDEF_ATTR: 1}
        if self.ram_style:
            attrs["ram_style"] = self.ram_style
        return attrs


class BankedMemory(WordMemory):
    """A deep ``WordMemory`` as banks of ``bank_words`` words (``read_latency`` >= 3).

    Cycle 1: the banks read (each an inferred memory of a few block RAMs side by side, so
    Yosys builds no multiplexer inside it); cycle 2: every bank's word is registered; cycle
    3: the bank the address named is selected and registered. Further latency is added as
    registers; ``rd_en`` enables all of them. Writes go to the addressed bank only. Same ports
    and behaviour as :class:`hdl.mem.WordMemory` with the same ``read_latency`` (a test checks it in
    simulation); read-write collisions are undefined (:data:`RW_UNDEF_ATTR`).
    """

    def __init__(self, shape, depth, *, bank_words=BANK_WORDS, read_latency=3, **kw):
        if read_latency < 3:
            raise ValueError(f"a banked memory needs read_latency >= 3, not {read_latency}")
        if kw.get("transparent"):
            raise ValueError("a banked memory cannot be transparent")
        if bank_words & (bank_words - 1) or bank_words < 2:
            raise ValueError(f"bank_words must be a power of two >= 2, not {bank_words}")
        super().__init__(shape, depth, read_latency=read_latency, **kw)
        self.bank_words = bank_words

    @property
    def banks(self) -> int:
        return -(-self._depth // self.bank_words)

    def elaborate(self, platform):
        m = Module()
        ab = self.bank_words.bit_length() - 1
        nb = self.banks
        init = self._init
        # the bank of the word being read, one-hot (cycle 1), and a cycle later (cycle 2): a
        # one-hot AND-OR multiplexer keeps each select bit's fan-out at one word
        sel1 = Signal(nb)
        sel2 = Signal(nb)
        en = self.rd_en                         # enables the whole read pipeline
        with m.If(en):
            m.d.sync += [sel1.eq(Cat(*[self.rd_addr[ab:] == i for i in range(nb)])
                                 if nb > 1 else 1),
                         sel2.eq(sel1)]
        outs = []
        for i in range(nb):
            depth = min(self.bank_words, self._depth - i * self.bank_words)
            m.submodules[f"bank{i}"] = mem = Memory(
                shape=self._shape, depth=depth,
                init=init[i * self.bank_words:(i + 1) * self.bank_words],
                attrs={RW_UNDEF_ATTR: 1})
            wr = mem.write_port()
            rd = mem.read_port()
            here = (self.wr_addr[ab:] == i) if nb > 1 else Const(1)
            m.d.comb += [wr.addr.eq(self.wr_addr[:ab]), wr.data.eq(self.wr_data),
                         wr.en.eq(self.wr_en & here),
                         rd.addr.eq(self.rd_addr[:ab]), rd.en.eq(self.rd_en)]
            q = Signal(self._shape, name=f"bank{i}_q")
            with m.If(en):
                m.d.sync += q.eq(rd.data)
            outs.append(q)
        word = Mux(sel2[0], Value.cast(outs[0]), 0)
        for i in range(1, nb):
            word = word | Mux(sel2[i], Value.cast(outs[i]), 0)
        out = Signal(self._shape)
        with m.If(en):
            m.d.sync += out.eq(word)
        m.d.comb += self.rd_data.eq(delay(m, out, self.read_latency - 3, "rd_q", en=en))
        return m


#: Memories of at most this many words go to the ECP5's LUT RAM (see :func:`ecp5_memory`).
LUTRAM_WORDS = 128


def ecp5_memory(shape, depth, *, transparent=False, init=(), single_port=False,
                read_latency=1):
    """Memory factory of the ECP5 boards: :class:`BankedMemory` for a memory deeper than a
    bank that may take three cycles; LUT RAM for the small per-block memories (states,
    working set, feedback rows, hidden list: a DP16KD's output arrives about 6 ns after the
    clock, a LUT RAM's a few LUT delays after its registered address), which sit in the
    one-cycle read-modify-write loop; :class:`BoardMemory` in block RAM for the rest."""
    if read_latency >= 3 and depth > BANK_WORDS and not transparent:
        return BankedMemory(shape, depth, init=init, single_port=single_port,
                            read_latency=read_latency)
    style = "distributed" if depth <= LUTRAM_WORDS else None
    return BoardMemory(shape, depth, transparent=transparent, init=init,
                       single_port=single_port, read_latency=read_latency, ram_style=style)


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

    def __call__(self, shape, depth, *, transparent=False, init=(), single_port=False,
                 read_latency=1):
        width = _width(shape)
        n = SPRAMMemory.blocks_for(shape, max(1, depth))
        if (single_port and not transparent and not list(init) and read_latency == 1
                and self.spram_used + n <= self.spram_blocks):
            self.spram_used += n
            self.placed.append((width, depth, "spram"))
            return SPRAMMemory(shape, depth, single_port=True)
        self.placed.append((width, depth, "bram"))
        return BoardMemory(shape, depth, transparent=transparent, init=init,
                           single_port=single_port, read_latency=read_latency)
