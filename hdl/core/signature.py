"""A base for the core's parametric signatures (the pattern of ``amaranth_stdio.serial`` and
``amaranth.lib.memory``): a signature is made from named integer parameters, checks them,
and is equal to another exactly when its class and parameters are."""

from amaranth.lib import wiring

__all__ = ["ParamSignature", "check_int"]


def check_int(name, value, minimum=0):
    """``value`` if it is an integer ``>= minimum``; else a ``TypeError`` / ``ValueError``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    return value


class ParamSignature(wiring.Signature):
    """A signature with parameters: subclasses pass their members and parameters up.

    The parameters are readable as attributes (``sig.lanes``) and take part in ``==`` and
    ``repr``; the members are derived from them, so they need not be compared.
    """

    def __init__(self, members, **params):
        self._params = params
        super().__init__(members)

    def __getattr__(self, name):
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__qualname__} has no attribute {name!r}")

    def __eq__(self, other):
        return type(self) is type(other) and self._params == other._params

    def __hash__(self):
        return hash((type(self), tuple(sorted(self._params.items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__qualname__}({args})"
