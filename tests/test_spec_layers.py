"""The layer list (``spec.layers``): today's two layers, their shapes, spike sources and
block counts (``spec.packing``'s), and what a layer list may not be."""

import pytest

from spec.config import Config
from spec.layers import INPUT, PREVIOUS, Layer, chain, default_names, layers
from spec.packing import layer_shape, layer_words, nblocks, words_per_row

CONFIGS = [Config(), Config(n_in=4, n_hid=3, n_out=2), Config(n_in=7, n_hid=9, n_out=5)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "tiny", "odd"])
def test_layers_of_a_config_are_input_hidden_output(cfg):
    h, o = layers(cfg)
    assert (h.index, h.name, h.n_pre, h.n_post, h.source) == (0, "H", cfg.n_in, cfg.n_hid,
                                                              INPUT)
    assert (o.index, o.name, o.n_pre, o.n_post, o.source) == (1, "O", cfg.n_hid, cfg.n_out,
                                                              PREVIOUS)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "tiny", "odd"])
@pytest.mark.parametrize("lanes", [1, 2, 3, 4, 8])
def test_layer_blocks_are_spec_packing_blocks(cfg, lanes):
    for layer in layers(cfg):
        assert (layer.n_pre, layer.n_post) == layer_shape(cfg, layer.index)
        assert layer.blocks(lanes) == words_per_row(cfg, lanes, layer.index)
        assert layer.blocks(lanes) == nblocks(layer.n_post, lanes)
        assert layer.words(lanes) == layer_words(cfg, lanes, layer.index)


def test_chain_of_more_layers():
    ls = chain((6, 5, 4, 3))
    assert [layer.name for layer in ls] == ["H1", "H2", "O"]
    assert [(layer.n_pre, layer.n_post) for layer in ls] == [(6, 5), (5, 4), (4, 3)]
    assert [layer.source for layer in ls] == [INPUT, PREVIOUS, PREVIOUS]
    assert [layer.index for layer in ls] == [0, 1, 2]
    assert default_names(1) == ("O",) and default_names(2) == ("H", "O")
    assert [layer.name for layer in chain((3, 2), names=["X"])] == ["X"]


def test_layers_are_frozen():
    layer = layers(Config())[0]
    with pytest.raises(AttributeError):
        layer.n_post = 1


@pytest.mark.parametrize("make", [
    lambda: chain((4,)),                            # no layer
    lambda: chain((4, 3, 2), names=["H"]),          # a name per layer
    lambda: chain((4, 3, 2), names=["H", "H"]),     # names are state suffixes: distinct
    lambda: chain((4, 0, 2)),                       # an empty population
    lambda: Layer(index=0, name="H_1", n_pre=4, n_post=3, source=INPUT),
    lambda: Layer(index=-1, name="H", n_pre=4, n_post=3, source=INPUT),
    lambda: Layer(index=0, name="H", n_pre=4, n_post=3, source="encoder"),
    lambda: Layer(index=0, name="H", n_pre=4.0, n_post=3, source=INPUT),
    lambda: default_names(0),
])
def test_bad_layer_lists(make):
    with pytest.raises(ValueError):
        make()
