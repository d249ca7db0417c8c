"""The capture wing: pcap and pcapng reading (:mod:`~mptcpspec.capture.pcap`) and writing
(:mod:`~mptcpspec.capture.writer`), link layers, IPv4/IPv6 and TCP headers
(:mod:`~mptcpspec.capture.packets`).  Imports only the codec wing.
"""
