"""The bottom layer: the specification as pure Python (NumPy, no Amaranth, no pyserial).

Everything else imports it and it imports nothing of the project: the configuration
(``config``), the register map (``registers``), the learning rules (``rules``), the integer
primitives and random streams (``fixed``), block packing (``packing``), the layer list
(``layers``), the protocol codec (``protocol``), the link defaults (``link``) and the cycle
formulas (``cycles``).
``docs/architecture.md`` shows the layers; ``import-linter`` (``pyproject.toml``) enforces them.
"""
