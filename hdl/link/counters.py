"""The flip-flop counters of ``READ_COUNTERS`` and of the ``PRESENT`` reply."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LinkCounters"]


class LinkCounters(wiring.Component):
    """This presentation's cycles and synaptic events, and the UART errors (all wrap at
    2**32). The totals over all presentations and the frame counters live in the reply
    buffer's RAM (:class:`hdl.link.executor.Executor` adds to them a byte at a time).

    Parameters
    ----------
    lanes : int
        The most synaptic events per cycle.

    Members
    -------
    start : In(1)
        A presentation is issued: both presentation counters become 0 (``count`` and
        ``events`` of that cycle are not added).
    count : In(1)
        Add a cycle to ``cycles``.
    events : In(range(lanes + 1))
        Add these synaptic events to ``syn_events`` (the core's ``syn_events``, gated).
    rx_error : In(1)
        Add one to ``uart_errors``.
    cycles, syn_events, uart_errors : Out(32)
    """

    def __init__(self, lanes: int):
        if not isinstance(lanes, int) or lanes < 1:
            raise TypeError(f"lanes must be a positive integer, not {lanes!r}")
        self.lanes = lanes
        super().__init__({"start": In(1), "count": In(1), "events": In(range(lanes + 1)),
                          "rx_error": In(1), "cycles": Out(32), "syn_events": Out(32),
                          "uart_errors": Out(32)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.start):
            m.d.sync += [self.cycles.eq(0), self.syn_events.eq(0)]
        with m.Else():
            m.d.sync += [self.cycles.eq(self.cycles + self.count),
                         self.syn_events.eq(self.syn_events + self.events)]
        m.d.sync += self.uart_errors.eq(self.uart_errors + self.rx_error)
        return m
