"""The export wing: the codecs for other tools, generated from ``spec/``.

Kaitai Struct descriptions (:mod:`~mptcpspec.export.ksy`), a Wireshark Lua post-dissector
(:mod:`~mptcpspec.export.lua`), the expression translator they share
(:mod:`~mptcpspec.export.exprs`), the pinned Kaitai compiler's driver
(:mod:`~mptcpspec.export.ksc`) and loader (:mod:`~mptcpspec.export.kaitai`), and
:mod:`~mptcpspec.export.regen`, the whole ``mptcpspec regen``.  Imports only the codec wing.
"""
