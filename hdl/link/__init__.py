"""The host link's components (``docs/protocol.md``), composed by
:class:`hdl.protocol.ProtocolEngine`."""
