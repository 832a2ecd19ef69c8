"""The sequencer's states come from the layer list: today's names exactly, and a clear error
for a layer list the two-layer datapath cannot drive."""

import gc

import pytest
from amaranth.hdl import Fragment

from hdl.core.sequencer import Sequencer, check_layers
from spec.config import Config
from spec.layers import INPUT, PREVIOUS, Layer, chain, layers

SIZES = dict(n_in=4, n_hid=3, n_out=2)
#: The 27 states, in the order of their encoding (tests/test_hdl_core.py checks their cycles).
STATES = ["IDLE", "STEP", "KEYS", "FB", "PRE_H", "PRE_O", "INT_H", "FIRE_H", "INT_O",
          "FIRE_O", "ERR", "ERR2", "UPD_H", "UPD_O", "END", "DFA_E", "ARG", "DONE", "DFA_E2",
          "DFA_UH", "DFA_UO", "L_STEP", "L_PRE_H", "L_PRE_O", "L_INT_H", "L_INT_O", "L_NEXT"]


def sequencer(layers=None, lanes=2):
    return Sequencer(**SIZES, timesteps=4, in_bits=4, lanes=lanes, latency=1, layers=layers)


def state_names(seq):
    """The FSM's state names in encoding order, from its state signal's decoder (the
    signal a top-level ``Switch`` of the elaborated fragment tests)."""
    frag = Fragment.get(seq, None)
    for stmt in frag.statements["comb"]:
        test = getattr(stmt, "test", None)
        if getattr(test, "name", None) == "seq_state":
            names = []
            for n in range(1 << len(test)):
                try:
                    names.append(test.decoder(n).split("/")[0])    # "NAME/n"
                except KeyError:                                    # past the last state
                    break
            return names
    raise AssertionError("no seq_state switch")


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_state_names_are_unchanged(lanes):
    seq = sequencer(lanes=lanes)
    assert seq.layers == chain((4, 3, 2))           # the default
    assert state_names(seq) == STATES
    # what the core passes
    assert state_names(sequencer(layers(Config(**SIZES)), lanes=lanes)) == STATES


@pytest.mark.parametrize("bad,match", [
    (chain((4, 3, 3, 2)), "two layers"),                      # a second hidden layer
    (chain((4, 2)), "two layers"),                            # no hidden layer
    (chain((4, 5, 2)), "layer 0"),                            # sizes of another network
    (chain((4, 3, 5)), "layer 1"),
    ((Layer(0, "H", 4, 3, INPUT), Layer(1, "O", 3, 2, INPUT)), "source"),
    ((Layer(1, "H", 4, 3, INPUT), Layer(0, "O", 3, 2, PREVIOUS)), "index"),
    ((Layer(0, "H", 4, 3, INPUT), Layer(1, "H", 3, 2, PREVIOUS)), "distinct"),
])
def test_rejects_a_layer_list_it_cannot_drive(bad, match):
    with pytest.raises(ValueError, match=match):
        check_layers(bad, **SIZES)


def test_rejects_what_is_not_a_layer():
    with pytest.raises(TypeError, match="Layer"):
        check_layers([(0, "H", 4, 3, INPUT), (1, "O", 3, 2, PREVIOUS)], **SIZES)


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_constructor_rejects_a_second_hidden_layer():
    with pytest.raises(ValueError, match=r"drives two layers .*, not 3$"):
        sequencer(chain((4, 3, 3, 2)))
    gc.collect()        # the rejected component, never elaborated: warned about here
