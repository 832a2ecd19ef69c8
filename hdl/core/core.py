"""The :class:`Core` component: its interface, and the submodules it composes."""

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.layers import layers

from ..encoder import Encoder
from ..mem import WordMemory
from .dither import Dither
from .feedback import HashedFeedback
from .lanes import NeuronLanes
from .layouts import cmd_layout, nblocks, regs_layout, result_layout, trace_layout
from .lists import SpikeLists
from .pipeline import OP_DFAU, BlockPipeline, token_layout
from .projection import ErrorProjection
from .raster import Raster
from .readout import Readout
from .rules import RULES
from .scalar_hash import ScalarHash
from .sequencer import MAX_WEIGHT_LATENCY, Sequencer
from .synapses import Synapses

__all__ = ["MAX_WEIGHT_LATENCY", "Core"]


class Core(wiring.Component):
    """The learning core.

    Parameters
    ----------
    cfg : spec.config.Config
        Only the ``arch`` fields are used at elaboration; everything of kind ``reg`` comes
        from the ``regs`` port at run time.
    lanes : int
        Neurons (and weights) processed per cycle, ``P``.
    memory : callable
        Memory factory with the :class:`hdl.mem.WordMemory` signature.
    weight_latency : int
        Read latency ``L`` (1 to 3) the core asks of the two weight memories; a board with
        deep weight memories registers their blocks and multiplexer with ``L = 3``. Every
        other memory has a latency of one cycle. The cycle counts grow with ``L`` (see
        :func:`cycles_per_step`); the results do not change.
    event_gate : callable, optional
        A per-event random gate of the weight updates (stochastic synapses): see
        :class:`hdl.core.synapses.Synapses`. None (the default) builds nothing.

    Attributes
    ----------
    regs : In(regs_layout(cfg))
        Runtime registers; hold them stable during a presentation.
    cmd : In(stream.Signature(cmd_layout(cfg)))
        Start one presentation (mode, label). Accepted only when idle.
    x_in : In(stream.Signature(unsigned(in_bits)))
        The ``n_in`` intensities of the next sample (channel 0 first), only when idle.
    result : Out(stream.Signature(result_layout(cfg)))
        Output spike counts and the predicted class; the core stays busy until taken.
    w_layer, w_addr, w_wdata, w_we, w_re : In
        Host weight port (only when idle): word ``i * NB1 + b`` of layer 0 is
        ``W1[i, b*P : b*P+P]``, word ``j * NB2 + b`` of layer 1 is ``W2[j, b*P : b*P+P]``.
    w_rdata : Out
        The word at ``w_addr`` (``w_layer``) of :attr:`w_read_latency` cycles before.
    busy : Out(1)
    sample_counter : Out(32)
        Learning presentations so far (seeds the dither, spec 3).
    counter_we, counter_wdata : In
        Overwrite the sample counter while idle (resuming training from a checkpoint must
        continue the dither sequence where it stopped).
    trace : Out(trace_layout(cfg, lanes))
        End-of-step ``V``, ``U`` and spikes of one block per valid cycle.
    step_done : Out(1)
        Pulses in the last cycle of every timestep (for cycle counting).
    syn_events : Out(range(P + 1))
        Synaptic events (weights read, and in a learning pass updated) this cycle: the
        number of real lanes of an integration read-modify-write, 0 otherwise.
    """

    def __init__(self, cfg, lanes: int = 1, memory=WordMemory, weight_latency: int = 1, *,
                 event_gate=None):
        if not (isinstance(lanes, int) and lanes >= 1):
            raise ValueError(f"lanes must be an integer >= 1, not {lanes!r}")
        if weight_latency not in range(1, MAX_WEIGHT_LATENCY + 1):
            raise ValueError(f"weight_latency must be 1..{MAX_WEIGHT_LATENCY}, not "
                             f"{weight_latency!r}")
        self.cfg = cfg
        self.lanes = P = lanes
        self.weight_latency = weight_latency
        #: Cycles from ``w_addr`` to ``w_rdata`` on the host weight port.
        self.w_read_latency = weight_latency + 1
        self.nb1 = nblocks(cfg.n_hid, P)
        self.nb2 = nblocks(cfg.n_out, P)
        self._memory = memory
        self._event_gate = event_gate
        wword = data.ArrayLayout(signed(cfg.w_bits), P)
        self.w_words = (cfg.n_in * self.nb1, cfg.n_hid * self.nb2)
        # one block in flight: what every pipeline stage carries
        self._token = token_layout(cfg.n_in, cfg.n_hid, cfg.n_out, cfg.timesteps, P)
        super().__init__({
            "regs": In(regs_layout(cfg)),
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "x_in": In(stream.Signature(unsigned(cfg.in_bits))),
            "result": Out(stream.Signature(result_layout(cfg))),
            "w_layer": In(1),
            "w_addr": In(range(max(self.w_words))),
            "w_wdata": In(wword),
            "w_we": In(1),
            "w_re": In(1),
            "w_rdata": Out(wword),
            "busy": Out(1),
            "sample_counter": Out(32),
            "counter_we": In(1),
            "counter_wdata": In(32),
            "trace": Out(trace_layout(cfg, P)),
            "step_done": Out(1),
            "syn_events": Out(range(P + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, P, nb1, nb2, L = self.cfg, self.lanes, self.nb1, self.nb2, self.weight_latency
        T, n_in, n_hid, n_out = cfg.timesteps, cfg.n_in, cfg.n_hid, cfg.n_out
        regs, mem, nb = self.regs, self._memory, max(nb1, nb2)

        # ---- the units ---------------------------------------------------------------------
        m.submodules.seq = seq = Sequencer(n_in=n_in, n_hid=n_hid, n_out=n_out, timesteps=T,
                                           in_bits=cfg.in_bits, lanes=P, latency=L,
                                           layers=layers(cfg))
        m.submodules.pipe = pipe = BlockPipeline(token=self._token, latency=L)
        m.submodules.hash = shash = ScalarHash()
        m.submodules.fbs = fbs = HashedFeedback(lanes=P, n_hid=n_hid, n_out=n_out, memory=mem)
        m.submodules.enc = enc = Encoder(cfg, memory=mem)
        m.submodules.lists = lists = SpikeLists(n_in=n_in, nb1=nb1, lanes=P, memory=mem)
        m.submodules.lanes = lanes = NeuronLanes(cfg, lanes=P, regs=regs_layout(cfg), memory=mem)
        m.submodules.dither = dither = Dither(lanes=P, n_hid=n_hid)
        # the projection takes B as the feedback source's port has it (b_bits)
        m.submodules.proj = proj = ErrorProjection(n_out=n_out, lanes=P, timesteps=T,
                                                   state_bits=cfg.state_bits, n_blocks=nb,
                                                   b_bits=fbs.read.signature.b_bits)
        m.submodules.syn = syn = Synapses(cfg, lanes=P, nb1=nb1, nb2=nb2, latency=L,
                                          memory=mem, event_gate=self._event_gate)
        m.submodules.raster = raster = Raster(lanes=P, timesteps=T, nb1=nb1, nb2=nb2,
                                              latency=L, memory=mem)
        m.submodules.readout = readout = Readout(n_out=n_out, timesteps=T, lanes=P, n_blocks=nb)
        q1, qL, xs, y = pipe.q1, pipe.qL, pipe.x, lanes.fire

        # ---- host ports ----------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.cmd), seq.cmd)
        idle = ~seq.busy
        m.d.comb += [
            seq.seed.eq(regs.seed), seq.target_rate.eq(regs.target_rate),
            seq.counter_we.eq(self.counter_we), seq.counter_wdata.eq(self.counter_wdata),
            self.sample_counter.eq(seq.sample_counter), self.busy.eq(seq.busy),
            self.step_done.eq(seq.step_done),
            self.result.valid.eq(seq.result_valid), seq.result_ready.eq(self.result.ready),
            self.result.payload.pred.eq(readout.pred),
            self.result.payload.counts.eq(readout.counts),
            # samples are taken only while idle
            enc.x_in.payload.eq(self.x_in.payload), enc.x_in.valid.eq(self.x_in.valid & idle),
            self.x_in.ready.eq(enc.x_in.ready & idle),
            # the weight port: S0 forwards its address while not issuing (a host read is the
            # X-stage weight data L + 1 cycles later); writes go through stage W
            seq.w_layer.eq(self.w_layer), seq.w_addr.eq(self.w_addr),
            self.w_rdata.eq(syn.rd_data),
            syn.idle.eq(idle), syn.host_we.eq(self.w_we), syn.host_layer.eq(self.w_layer),
            syn.host_addr.eq(self.w_addr), syn.host_data.eq(self.w_wdata),
            self.trace.eq(lanes.trace), self.syn_events.eq(lanes.syn_events),
        ]

        # ---- the sequencer, the pipeline, the scalar hash and the feedback source ---------
        m.d.comb += [
            pipe.issue.eq(seq.issue), seq.drained.eq(pipe.drained),
            shash.i.eq(seq.h_in), seq.h_q.eq(shash.o),
            fbs.start.eq(seq.fb_start), fbs.key.eq(seq.key1), fbs.issue.eq(seq.fb_issue),
            seq.fb_h_in.eq(fbs.h_in), seq.fb_rows_issued.eq(fbs.rows_issued),
            fbs.h_q.eq(shash.o), fbs.fill.eq(seq.fb_fill), fbs.k.eq(seq.k),
            seq.fb_done.eq(fbs.done), fbs.read.addr.eq(seq.fb_addr),
        ]

        # ---- the encoder and the spike lists ----------------------------------------------
        m.d.comb += [
            enc.start.eq(seq.enc_start), enc.first.eq(seq.enc_first),
            seq.enc_busy.eq(enc.busy), enc.spikes.ready.eq(1),    # always accepted
            lists.enc_valid.eq(enc.spikes.valid & enc.spikes.payload.spike),
            lists.enc_chan.eq(enc.spikes.payload.chan),
            lists.reset.eq(seq.list_reset), lists.restart.eq(seq.list_restart),
            lists.take.eq(seq.list_take),
            seq.in_avail.eq(lists.in_avail), seq.in_entry.eq(lists.in_entry),
            seq.hid_avail.eq(lists.hid_avail), seq.hid_entry.eq(lists.hid_entry),
            # stage Y of FIRE_H appends its blocks with spikes (they arrive in order)
            lists.fire_valid.eq(y.valid & ~y.layer & y.s.any()),
            lists.fire_block.eq(y.block), lists.fire_mask.eq(y.s),
            # the DFA learning phase replays them from the raster
            lists.replay_valid.eq(raster.replay_valid),
            lists.replay_block.eq(raster.replay_block),
            lists.replay_mask.eq(raster.replay_mask),
        ]

        # ---- the weights (read from q[1]; stage W) ------------------------------------------
        m.d.comb += [
            syn.rd_addr.eq(q1.waddr), syn.rd_layer.eq(xs.layer), syn.d.eq(lanes.d),
            syn.upd_en.eq(lanes.w_update), syn.upd_layer.eq(xs.layer),
            syn.upd_addr.eq(xs.waddr),
        ]

        # ---- the lanes (stages X, X2, Y), their dither and error projection ----------------
        m.d.comb += [
            lanes.regs.eq(regs), lanes.replay.eq(seq.replay), lanes.learn.eq(seq.learn),
            lanes.qL.eq(qL), lanes.x.eq(xs),
            lanes.rs_hid_g.eq(raster.hid.g), lanes.rs_out_g.eq(raster.out_g),
            lanes.dither.eq(dither.x), lanes.proj.eq(proj.proj), lanes.w.eq(syn.rd_data),
            dither.hstep.eq(shash.o), dither.start.eq(seq.phi_start),
            dither.advance.eq(lanes.pre_done), dither.last_hid.eq(lanes.pre_last_hid),
            proj.load.eq(seq.e_load), proj.e_in.eq(seq.e_in), proj.set.eq(seq.e_set),
            proj.set_k.eq(seq.e_set_k), proj.set_value.eq(seq.e_set_value),
            proj.sum.eq(seq.e_sum), proj.b_row.eq(fbs.read.data),
            proj.layer.eq(qL.layer), proj.block.eq(qL.b),
            proj.err_shift_hid.eq(regs.err_shift_hid), proj.err_shift_out.eq(regs.err_shift_out),
            proj.unshifted.eq(qL.op == OP_DFAU),
        ]

        # ---- the DFA raster (read from q[1]; written by the forward pass's stage Y) --------
        m.d.comb += [
            raster.rd_block.eq(q1.b), raster.base_h.eq(seq.base_h), raster.base_o.eq(seq.base_o),
            raster.wr_en.eq(y.valid & ~seq.replay & RULES.has_replay(seq.mode)),
            raster.wr_layer.eq(y.layer), raster.wr_block.eq(y.block),
            raster.wr_s.eq(y.s), raster.wr_g.eq(y.g),
            raster.replay.eq(seq.replay), raster.x_pre.eq(lanes.x_pre),
            raster.x_layer.eq(xs.layer), raster.x_block.eq(xs.b),
        ]

        # ---- the readout (stage Y of FIRE_O; the prediction's scan) -------------------------
        m.d.comb += [
            readout.clear.eq(seq.count_clear), readout.spk_valid.eq(y.valid & y.layer),
            readout.spk_block.eq(y.block), readout.spk.eq(y.s),
            readout.k.eq(seq.k), readout.k_next.eq(seq.k_next), readout.arg.eq(seq.arg),
            seq.count.eq(readout.count),
            seq.s_out.eq(readout.s_out),
        ]
        return m
