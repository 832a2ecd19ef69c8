"""Feedback sources: where the error projection gets the rows of ``B`` from.

The projection reads ``B`` through :class:`FeedbackPort` only (one word of ``P`` rows of
``n_out`` entries of ``b_bits`` bits per block, one cycle of latency), so a source that
stores a host-written or learned ``B`` of small signed integers is a second component with
the same port, not a change of the projection (:class:`~.projection.ErrorProjection` takes
``b_bits`` from the port's signature). Today's source is :class:`HashedFeedback`: ``B = +-1``
(``b_bits = 1``) is hashed into a RAM once per learning presentation (``KEYS`` / ``FB``).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..mem import WordMemory
from .signature import ParamSignature, check_int

__all__ = ["FeedbackPort", "HashedFeedback", "feedback_layout"]


def feedback_layout(n_out, lanes, b_bits=1):
    """The ``B`` rows of one block, row ``l`` (of hidden neuron ``b P + l``) in lane ``l``.

    ``b_bits == 1``: ``ArrayLayout(unsigned(n_out), lanes)``, one bit per entry, bit ``k``
    of a row is ``B[j, k]`` as a sign (1: +1, 0: -1; ``spec.fixed.feedback_values``).
    ``b_bits >= 2``: ``ArrayLayout(ArrayLayout(signed(b_bits), n_out), lanes)``, each entry
    the two's-complement integer in ``-2**(b_bits-1) .. 2**(b_bits-1) - 1`` (bits
    ``b_bits k .. b_bits k + b_bits - 1`` of its row).
    """
    check_int("n_out", n_out, 1)
    check_int("lanes", lanes, 1)
    check_int("b_bits", b_bits, 1)
    if b_bits == 1:
        return data.ArrayLayout(unsigned(n_out), lanes)
    return data.ArrayLayout(data.ArrayLayout(signed(b_bits), n_out), lanes)


class FeedbackPort:
    """The read port of a feedback source (the consumer's view: ``addr`` out, ``data`` in)."""

    class Signature(ParamSignature):
        """Members: ``addr`` Out(range(blocks)), ``data`` In(feedback_layout(n_out, lanes,
        b_bits)): the ``B`` rows of block ``addr`` of one cycle before. ``b_bits`` is the
        width of an entry of ``B`` (1: a sign; see :func:`feedback_layout`)."""

        def __init__(self, *, lanes, n_hid, n_out, b_bits=1):
            check_int("lanes", lanes, 1)
            check_int("n_hid", n_hid, 1)
            nb1 = -(-n_hid // lanes)
            super().__init__({
                "addr": Out(range(max(nb1, 1))),
                "data": In(feedback_layout(n_out, lanes, b_bits)),
            }, lanes=lanes, n_hid=n_hid, n_out=n_out, b_bits=b_bits)


class HashedFeedback(wiring.Component):
    """``B[j, k]`` = bit ``k mod 32`` of ``hash32(key1 ^ j ^ ((k >> 5) << 16))`` (spec 3; a
    constant row with its entry 0 negated),
    hashed into a single-port RAM of ``NB1`` words, one bit a cycle: a source of signs,
    ``b_bits = 1``.

    The hashes are issued ``HASH_LATENCY`` cycles ahead of their bits (``issue``; the
    sequencer gives the scalar hash ``h_in`` while ``rows_issued`` is low) and taken as
    they appear (``fill``, with the bit number ``k`` the sequencer counts).

    Members
    -------
    read : In(FeedbackPort.Signature)
    start : In(1)
        A learning presentation starts: row 0, bit 0.
    key : In(32)
        ``key1``; ``h_in`` is formed from it.
    issue : In(1)
        The scalar hash takes ``h_in`` this cycle.
    h_in : Out(32)
        The next hash to issue.
    rows_issued : Out(1)
        Every row's hashes are issued.
    h_q : In(32)
        The scalar hash's output.
    fill, k : In
        The bit ``k`` of ``h_q`` is the next entry of ``B``.
    done : Out(1)
        With ``fill``: that entry was the last; ``B`` is complete.
    """

    class Signature(ParamSignature):
        def __init__(self, *, lanes, n_hid, n_out):
            super().__init__({
                "read": In(FeedbackPort.Signature(lanes=lanes, n_hid=n_hid, n_out=n_out,
                                                  b_bits=1)),
                "start": In(1), "key": In(32), "issue": In(1), "h_in": Out(32),
                "rows_issued": Out(1), "h_q": In(32), "fill": In(1),
                "k": In(range(max(n_out, 2))), "done": Out(1),
            }, lanes=lanes, n_hid=n_hid, n_out=n_out)

    def __init__(self, *, lanes, n_hid, n_out, memory=WordMemory):
        self._memory = memory
        super().__init__(self.Signature(lanes=lanes, n_hid=n_hid, n_out=n_out))

    def elaborate(self, platform):
        m = Module()
        P, n_out = self.signature.lanes, self.signature.n_out
        nb1 = -(-self.signature.n_hid // P)
        # Never read (usefully) in a cycle it is written: a single-port RAM will do.
        m.submodules.fb = fb = self._memory(feedback_layout(n_out, P), nb1, single_port=True)
        m.d.comb += [fb.rd_addr.eq(self.read.addr), self.read.data.eq(fb.rd_data)]

        # issue side: row ji, bit ki (past the last row the sequencer issues the first
        # step's hash: the matrix may have fewer bits than the hash has stages)
        ji = Signal(range(nb1 * P + 1))
        ki = Signal(range(max(n_out, 2)))
        rows_done = ji == nb1 * P
        m.d.comb += [self.rows_issued.eq(rows_done),
                     self.h_in.eq(self.key ^ ji ^ ((ki >> 5) << 16))]
        with m.If(self.issue & ~rows_done):
            m.d.sync += ki.eq(ki + 1)
            with m.If(ki == n_out - 1):
                m.d.sync += [ki.eq(0), ji.eq(ji + 1)]

        # fill side: bits shifted into the P-row word of block bj (lane lj)
        bj = Signal(range(max(nb1, 2)))
        lj = Signal(range(max(P, 2)))
        fb_sr = Signal(P * n_out)
        with m.If(self.start):
            m.d.sync += [ji.eq(0), ki.eq(0), bj.eq(0), lj.eq(0)]
        with m.If(self.fill):
            bit = self.h_q.bit_select(self.k[:5], 1)
            sr = self._fill_word(m, fb_sr, bit, P, n_out)
            m.d.sync += fb_sr.eq(sr)
            with m.If(self.k == n_out - 1):
                m.d.sync += lj.eq(lj + 1)
                with m.If(lj == P - 1):
                    m.d.comb += [fb.wr_addr.eq(bj), fb.wr_data.eq(sr), fb.wr_en.eq(1)]
                    m.d.sync += [lj.eq(0), bj.eq(bj + 1)]
                    m.d.comb += self.done.eq(bj == nb1 - 1)
        return m

    def _fill_word(self, m, fb_sr, bit, P, n_out):
        """The shift register with ``bit`` shifted in; when that bit completes a constant row
        (``n_out >= 2``), the row's entry ``k = 0`` negated (spec 3). ``first`` holds the
        row's entry 0, ``same`` that every entry since has equalled it."""
        shifted = Cat(fb_sr[1:], bit) if P * n_out > 1 else bit
        if n_out < 2:
            return shifted
        first, same = Signal(), Signal()
        with m.If(self.k == 0):
            m.d.sync += [first.eq(bit), same.eq(1)]
        with m.Else():
            m.d.sync += same.eq(same & (bit == first))
        constant = (self.k == n_out - 1) & same & (bit == first)
        # the completed row is the top n_out bits; its entry 0 is the lowest of them
        sr = Signal(P * n_out)
        m.d.comb += sr.eq(Mux(constant, shifted ^ (1 << (P * n_out - n_out)), shifted))
        return sr
