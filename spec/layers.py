"""The layer sequence of the network: the one definition of which synaptic layers there are.

A :class:`Layer` is one weight matrix, from its ``n_pre`` presynaptic neurons onto its
``n_post`` neurons, with a name (the suffix of the sequencer's per-layer states: ``PRE_H``,
``INT_O``, ...) and the source of its presynaptic spikes: :data:`INPUT` (the input
encoder's spike list) or :data:`PREVIOUS` (the spike list of the layer before). The core's
sequencer generates its per-layer states by going through :func:`layers`, so a second
hidden layer is a longer list (:func:`chain`), not new states; block counts are
``spec.packing``'s.

Today's network is two layers: input -> hidden (``"H"``) -> output (``"O"``). The core's
datapath drives exactly these two (its token's layer is one bit; one hidden spike list),
so its sequencer rejects any other list.
"""

from __future__ import annotations

from dataclasses import dataclass

from .packing import nblocks

__all__ = ["INPUT", "PREVIOUS", "SOURCES", "Layer", "chain", "default_names", "layers"]

#: Presynaptic spikes from the input encoder (the first layer).
INPUT = "input"
#: Presynaptic spikes from the previous layer's spike list (every later layer).
PREVIOUS = "previous"
SOURCES = (INPUT, PREVIOUS)


@dataclass(frozen=True)
class Layer:
    """One synaptic layer.

    Attributes
    ----------
    index : int
        Position in the layer list (0: the first); the core's ``layer`` number.
    name : str
        Suffix of the layer's states (``"H"``, ``"O"``): letters and digits.
    n_pre, n_post : int
        Presynaptic neurons (rows of the weight matrix), the layer's neurons (columns).
    source : str
        Where the presynaptic spikes come from: :data:`INPUT` or :data:`PREVIOUS`.
    """

    index: int
    name: str
    n_pre: int
    n_post: int
    source: str

    def __post_init__(self):
        if not (isinstance(self.index, int) and self.index >= 0):
            raise ValueError(f"layer index must be an integer >= 0, not {self.index!r}")
        if not (isinstance(self.name, str) and self.name.isalnum() and self.name.isascii()):
            raise ValueError(f"layer name must be ASCII letters and digits, not {self.name!r}")
        for field in ("n_pre", "n_post"):
            v = getattr(self, field)
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"{field} of layer {self.name} must be an integer >= 1, "
                                 f"not {v!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source of layer {self.name} must be one of {SOURCES}, "
                             f"not {self.source!r}")

    def blocks(self, lanes: int) -> int:
        """Blocks of ``lanes`` neurons that hold the layer's neurons: the words of one
        weight row (``NB1``, ``NB2``), ``spec.packing.nblocks``."""
        return nblocks(self.n_post, lanes)

    def words(self, lanes: int) -> int:
        """Memory words of the layer's weights: ``n_pre`` rows of :meth:`blocks` words."""
        return self.n_pre * self.blocks(lanes)


def default_names(n_layers: int) -> tuple[str, ...]:
    """``"H"``, ``"O"`` for two layers; ``"H1"``, ``"H2"``, ..., ``"O"`` for more."""
    if n_layers < 1:
        raise ValueError(f"a network has at least one layer, not {n_layers!r}")
    if n_layers <= 2:
        return ("H", "O")[2 - n_layers:]
    return tuple(f"H{i + 1}" for i in range(n_layers - 1)) + ("O",)


def chain(sizes, names=None) -> tuple[Layer, ...]:
    """The layers of the feed-forward chain ``sizes[0] -> sizes[1] -> ...`` (neurons per
    population, the input first): the first layer takes the input's spikes, every later one
    the previous layer's. ``names`` defaults to :func:`default_names`."""
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"a chain needs at least two populations, not {sizes!r}")
    names = default_names(len(sizes) - 1) if names is None else tuple(names)
    if len(names) != len(sizes) - 1:
        raise ValueError(f"{len(sizes) - 1} layers need as many names, not {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be distinct, not {names!r}")
    return tuple(Layer(index=i, name=name, n_pre=sizes[i], n_post=sizes[i + 1],
                       source=INPUT if i == 0 else PREVIOUS)
                 for i, name in enumerate(names))


def layers(cfg) -> tuple[Layer, ...]:
    """The network of ``cfg``: input -> hidden (``"H"``) -> output (``"O"``)."""
    return chain((cfg.n_in, cfg.n_hid, cfg.n_out))
