"""The network core: one presentation of ``T`` timesteps in inference, eRBP or DFA mode.

Architecture
------------
``P = lanes`` neurons of a layer are processed per cycle. Every per-neuron memory holds one
*block* of ``P`` consecutive neurons per word (neuron ``j`` is lane ``j % P`` of block
``j // P``), and weight rows are packed the same way: word ``i * NB1 + b`` of W1 holds
``W1[i, b*P : b*P + P]`` (``NB1 = ceil(n_hid / P)``, ``NB2 = ceil(n_out / P)``; lanes past
the end of a layer are padding, never spike, and their weights are ignored).

Memories (all :class:`hdl.mem.WordMemory`: one read port, one write port, so any of them
can be replaced by a board's block RAM; one cycle of read latency, except the two weight
memories, which are read with ``weight_latency`` cycles):

============  =======================  ====================================================
name          depth                    word
============  =======================  ====================================================
``w1``        ``n_in * NB1``           ``P`` weights
``w2``        ``n_hid * NB2``          ``P`` weights
``ns``        ``NB1 + NB2``            ``P x (V, U)``: the state at the step boundary
``wk``        ``NB1 + NB2``            ``P x (acc, d, gate, spike)``: the step's working set
``fb``        ``NB1``                  ``P x n_out`` bits of the feedback matrix ``B``
``rs_h/o``    ``T * NB1`` / ``T*NB2``  DFA raster: hidden spikes and gates / output gates
``enc``       ``n_in``                 intensity and accumulator (inside the encoder)
``in_list``   ``n_in``                 channel of an input spike of this step
``hid_list``  ``NB1``                  ``(block, P-bit mask)`` of a hidden block with spikes
============  =======================  ====================================================

The block pipeline
------------------
The sequencer (stage S0) issues at most one block a cycle; every stage after it starts
from registers, so no path runs from the state machine into the arithmetic:

* ``q[1]``: addresses the weight memories (read latency ``L = weight_latency``);
* ``q[2] .. q[L]``: wait for them; ``q[L]`` addresses ``ns``, ``wk``, the rasters;
* X: all the data of the block is there; compute, write ``wk`` (the one-cycle
  read-modify-write loop of the accumulators, whatever ``L`` is; X forwards its own last
  write, the only one a read can miss);
* W: the updated weights are written (registered once more: deep weight memories fan out
  to many blocks);
* X2: ``UPD`` and ``DFAU`` write ``ns`` (``U`` takes the error projection);
* Y: ``FIRE``'s spikes are appended to the hidden list, counted, shifted into ``s_out``.

The error projection has a pipeline of its own that ends in X (``fb`` is read three
stages before ``q[L]``, which for ``L < 3`` is ahead of the issue: the ``UPD`` scans visit
the blocks in consecutive cycles). The sequencer waits for the pipeline only where it needs
its results: ``INT_O`` takes the hidden list and ``ERR`` the output spikes once the last
``FIRE`` block is in Y, and after the last step ``END`` waits ``L`` cycles.

One timestep is a sequence of phases, each a scan of blocks through that pipeline:

1. ``STEP`` (1 cycle): ``hstep = hash32(key2 ^ g)`` (the per-step half of the dither,
   presented to the pipelined hash during the step before), the label's target spike, and
   the encoder is started.
2. ``PRE`` (both layers): from the start-of-step ``V0, U0`` compute the gate, the update
   ``d = gate ? sround(U0, shift, r) : 0`` (``r`` the top bits of ``hstep + n * 0x9E3779B9``,
   per lane) and initialise the accumulator to the leaked ``V0 - (V0 >> leak_v)``. Summing
   the weights into an accumulator that already holds the leaked state and saturating once
   at the end equals ``sat(leak(V0) + I)`` because the accumulator is wide. The encoder
   scans its ``n_in`` channels in parallel with this phase, appending the channel of every
   spike to the input spike list (a memory of ``n_in`` words and a counter).
3. ``INT_H``: for each input spike (in list order: lowest index first) and each block
   ``b``: read ``W1[i, b]`` and ``acc[b]``, add, and in a learning mode write back
   ``sat_w(w + d)``: the read-modify-write of spec 6.2 on the same pass.
4. ``FIRE_H``: saturate, compare, reset; every block with a spike is appended to the hidden
   spike list as ``(block, P-bit mask)``; ``INT_O`` takes the mask's spikes lowest lane first.
5. ``INT_O``, ``FIRE_O``: the same for the output layer; output spikes are counted.
6. ``ERR`` (2 cycles): ``e = tgt - s_out`` (eRBP only).
7. ``UPD`` (both layers): ``U`` gets the leak and the error (through ``B`` for hidden
   neurons), and ``(V, U)`` is written to the state memory; this is where the trace port
   reports the end-of-step state.

After the last step ``ARG`` forms the prediction (the lowest index of the largest count,
one count a cycle).

Components
----------
:class:`Core` (``core.py``) declares the ports and composes one component per concern, each
in its own module with a parametric ``Signature``; its ``elaborate`` only wires them:

==================  ====================================================================
module              component
==================  ====================================================================
``sequencer.py``    :class:`~.sequencer.Sequencer`: stage S0, the 27-state FSM (its
                    per-layer states generated from the layer list, ``spec.layers``), the
                    control registers, the spike cursor of the integrate passes
``pipeline.py``     :class:`~.pipeline.BlockPipeline`: the token registers ``q[1..L]``, X
``lanes.py``        :class:`~.lanes.NeuronLanes`: stages X, X2, Y; ``ns``, ``wk``, ``dm``
``synapses.py``     :class:`~.synapses.Synapses`: ``w1``, ``w2``, stage W, the host write,
                    the optional per-event gate (stochastic synapses)
``dither.py``       :class:`~.dither.Dither`: the per-lane Weyl offsets
``scalar_hash.py``  :class:`~.scalar_hash.ScalarHash`: ``hash32`` in ``HASH_LATENCY`` stages
``feedback.py``     :class:`~.feedback.FeedbackPort` (what the projection reads) and
                    :class:`~.feedback.HashedFeedback` (``B`` hashed into ``fb``)
``projection.py``   :class:`~.projection.ErrorProjection`: the errors and the projection
``lists.py``        :class:`~.lists.SpikeLists`: ``in_list``, ``hid_list``, their pointer
``raster.py``       :class:`~.raster.Raster`: ``rs_h``, ``rs_o``, the DFA replay
``readout.py``      :class:`~.readout.Readout`: the counts, ``s_out``, the prediction
``rules.py``        the learning rules' choices (phases, gate, shift, error), consulted by
                    the sequencer and the lanes
``layouts.py``,     the port layouts and modes; the cycle formulas; arithmetic helpers
``cycles.py``,
``arith.py``
==================  ====================================================================

Cycle count
-----------
``docs/cycles.md`` gives the formulas (one forward step costs
``15 + 2 L + max(NB1 + NB2, n_in + 2) + 2 (NB1 + NB2) + n1(t) NB1 + n2(t) NB2`` cycles
with ``n1(t)`` input and ``n2(t)`` hidden spikes; integration dominates). :func:`cycles_per_step`,
:func:`presentation_cycles` and :func:`synaptic_events` evaluate them, and
``tests/test_hdl_core.py`` checks them against the simulated cycle counts of every
presentation.

Hardware notes
--------------
* The two layers share one datapath per lane (only one layer is ever in flight), so its
  cost is per lane, not per lane and layer.
* ``ns`` and ``wk`` hold both layers (layer 1 from word ``NB1``): one memory per kind
  saves block RAMs and the layer multiplexer. ``fb`` and the rasters are ``single_port``
  (never usefully read while written), so a board may put them in single-port RAM.
* No memory needs read-before-write: a word read in the cycle it is written is never
  used, except through the transparent ``hid_list`` (and the encoder's memory), so a board
  may declare read-write collisions undefined (``boards/memory.py``). The host must not read
  and write the weight port in the same cycle.
* The per-lane dither offset ``n * 0x9E3779B9`` is stepped by a register per lane (the PRE
  scans visit neurons in order), not multiplied. The scalar hash (keys, ``B``, the per-step
  half of the dither) is pipelined in ``HASH_LATENCY`` stages, one adder each; a learning
  presentation starts by hashing the seed (``KEYS``).
* ``B`` is not regenerated per use: it is hashed once per learning presentation into the
  ``fb`` memory (``n_hid x n_out`` bits), because the hidden error needs a whole row of
  ``B`` per neuron per step (``n_out`` hashes each on the fly).
* The hidden error projection ``sum_k B[j,k] ec[k]`` is ``2 (n_out S - c esum)`` with ``S``
  the sum of ``e[k]`` over the ``c`` outputs with ``B[j,k] = +1``: no centered errors are
  stored, no negations. The projection takes the width of ``B``'s entries (``b_bits``)
  from the feedback source's port: a source of small signed integers (``b_bits >= 2``)
  gets ``n_out S - r esum`` with ``S = sum_k B[j,k] e[k]``, ``r`` the row sum, in the
  same four stages.
* Area and clock on the boards: ``boards/`` (``python -m boards.build``) reports them.
  The weight memories need one read and one write per cycle (read-modify-write pipeline),
  so ``w1`` cannot go to the UP5K's single-port SPRAM without halving the integration
  rate.
* The runtime registers are sampled live: hold them stable during a presentation.
"""

# the private helpers are re-exported for the tests that check them (tests/test_hdl_arith.py)
from spec.cycles import cycles_per_step, presentation_cycles, synaptic_events

from .arith import sat as _sat  # noqa: F401
from .arith import shl_sat as _shl_sat  # noqa: F401
from .core import MAX_WEIGHT_LATENCY, Core
from .layouts import (
                      MODE_NAMES,
                      Mode,
                      cmd_layout,
                      reg_values,
                      regs_layout,
                      result_layout,
                      trace_layout,
)
from .layouts import nblocks as _nblocks  # noqa: F401
from .scalar_hash import HASH_LATENCY

__all__ = ["HASH_LATENCY", "MAX_WEIGHT_LATENCY", "MODE_NAMES", "Core", "Mode", "cmd_layout",
           "cycles_per_step", "presentation_cycles", "reg_values", "regs_layout",
           "result_layout", "synaptic_events", "trace_layout"]
