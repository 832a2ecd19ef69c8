"""Board builds with the open flow (Yosys, nextpnr via YoWASP) on amaranth-boards platforms.

``python -m boards.build --board icebreaker|ulx3s-85f|orangecrab-25f`` builds a bitstream
and ``build/boards/<board>/report.json``; see :mod:`boards.build`. One module per board
(:mod:`boards.icebreaker`, :mod:`boards.ulx3s`, :mod:`boards.orangecrab`) says which network,
clock, pins and memories it uses.
"""
