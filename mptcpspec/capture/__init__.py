"""The capture wing: pcap and pcapng reading (:mod:`~mptcpspec.capture.pcap`), link layers,
IPv4/IPv6 and TCP headers (:mod:`~mptcpspec.capture.packets`).  Imports only the codec wing.
"""
