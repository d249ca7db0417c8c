"""Wireshark 4.0's types and value strings of the fields we share with it, as ``tshark -G fields``,
``-G values`` and ``-G ftypes`` give them; written by ``python -m tests.test_tshark_filters --write``
and checked against tshark by that test."""

from __future__ import annotations

__all__ = ["TRUE_FALSE", "TYPES", "TYPE_NAMES", "VALUES"]

#: field or protocol -> its Wireshark type
TYPES: dict[str, str] = {
    "frame.number": "FT_UINT32",
    "frame.time_epoch": "FT_RELATIVE_TIME",
    "frame.time": "FT_ABSOLUTE_TIME",
    "frame.time_relative": "FT_RELATIVE_TIME",
    "frame.time_delta": "FT_RELATIVE_TIME",
    "frame.time_delta_displayed": "FT_RELATIVE_TIME",
    "frame.len": "FT_UINT32",
    "frame.cap_len": "FT_UINT32",
    "ip.src": "FT_IPv4",
    "ip.dst": "FT_IPv4",
    "ipv6.src": "FT_IPv6",
    "ipv6.dst": "FT_IPv6",
    "ip.addr": "FT_IPv4",
    "ipv6.addr": "FT_IPv6",
    "ip.len": "FT_UINT16",
    "ip.ttl": "FT_UINT8",
    "ip.id": "FT_UINT16",
    "tcp.srcport": "FT_UINT16",
    "tcp.dstport": "FT_UINT16",
    "tcp.port": "FT_UINT16",
    "tcp.stream": "FT_UINT32",
    "tcp.seq": "FT_UINT32",
    "tcp.seq_raw": "FT_UINT32",
    "tcp.ack": "FT_UINT32",
    "tcp.ack_raw": "FT_UINT32",
    "tcp.len": "FT_UINT32",
    "tcp.hdr_len": "FT_UINT8",
    "tcp.flags": "FT_UINT16",
    "tcp.flags.fin": "FT_BOOLEAN",
    "tcp.flags.syn": "FT_BOOLEAN",
    "tcp.flags.reset": "FT_BOOLEAN",
    "tcp.flags.push": "FT_BOOLEAN",
    "tcp.flags.ack": "FT_BOOLEAN",
    "tcp.flags.urg": "FT_BOOLEAN",
    "tcp.window_size_value": "FT_UINT16",
    "tcp.checksum": "FT_UINT16",
    "tcp.window_size": "FT_UINT32",
    "tcp.window_size_scalefactor": "FT_INT32",
    "tcp.nxtseq": "FT_UINT32",
    "tcp.time_relative": "FT_RELATIVE_TIME",
    "tcp.time_delta": "FT_RELATIVE_TIME",
    "tcp.analysis.acks_frame": "FT_FRAMENUM",
    "tcp.analysis.ack_rtt": "FT_RELATIVE_TIME",
    "tcp.analysis.initial_rtt": "FT_RELATIVE_TIME",
    "tcp.analysis.bytes_in_flight": "FT_UINT32",
    "tcp.analysis.push_bytes_sent": "FT_UINT32",
    "tcp.analysis.flags": "FT_NONE",
    "tcp.analysis.retransmission": "FT_NONE",
    "tcp.analysis.fast_retransmission": "FT_NONE",
    "tcp.analysis.spurious_retransmission": "FT_NONE",
    "tcp.analysis.out_of_order": "FT_NONE",
    "tcp.analysis.lost_segment": "FT_NONE",
    "tcp.analysis.ack_lost_segment": "FT_NONE",
    "tcp.analysis.window_update": "FT_NONE",
    "tcp.analysis.window_full": "FT_NONE",
    "tcp.analysis.keep_alive": "FT_NONE",
    "tcp.analysis.keep_alive_ack": "FT_NONE",
    "tcp.analysis.zero_window": "FT_NONE",
    "tcp.analysis.zero_window_probe": "FT_NONE",
    "tcp.analysis.zero_window_probe_ack": "FT_NONE",
    "tcp.analysis.reused_ports": "FT_NONE",
    "tcp.analysis.duplicate_ack": "FT_NONE",
    "tcp.analysis.duplicate_ack_num": "FT_UINT32",
    "tcp.analysis.duplicate_ack_frame": "FT_FRAMENUM",
    "tcp.analysis.rto": "FT_RELATIVE_TIME",
    "tcp.analysis.rto_frame": "FT_FRAMENUM",
    "ip.proto": "FT_UINT8",
    "vlan.id": "FT_UINT16",
    "vlan.priority": "FT_UINT16",
    "vlan.etype": "FT_UINT16",
    "ieee8021ad.id": "FT_UINT16",
    "ieee8021ad.svid": "FT_UINT16",
    "ieee8021ad.cvid": "FT_UINT16",
    "mpls.label": "FT_UINT32",
    "mpls.exp": "FT_UINT32",
    "mpls.bottom": "FT_UINT32",
    "mpls.ttl": "FT_UINT32",
    "ppp.address": "FT_UINT8",
    "ppp.control": "FT_UINT8",
    "ppp.protocol": "FT_UINT16",
    "pppoe.code": "FT_UINT8",
    "pppoe.session_id": "FT_UINT16",
    "gre.flags_and_version": "FT_UINT16",
    "gre.proto": "FT_UINT16",
    "gre.key": "FT_UINT32",
    "gre.key.payload_length": "FT_UINT16",
    "gre.key.call_id": "FT_UINT16",
    "gre.sequence_number": "FT_UINT32",
    "gre.ack_number": "FT_UINT32",
    "udp.srcport": "FT_UINT16",
    "udp.dstport": "FT_UINT16",
    "udp.length": "FT_UINT16",
    "vxlan.flags": "FT_UINT16",
    "vxlan.vni": "FT_UINT24",
    "geneve.proto_type": "FT_UINT16",
    "geneve.vni": "FT_UINT24",
    "gtp.flags": "FT_UINT8",
    "gtp.message": "FT_UINT8",
    "gtp.teid": "FT_UINT32",
    "tcp.options.mptcp.subtype": "FT_UINT8",
    "tcp.options.mptcp.version": "FT_UINT8",
    "tcp.options.mptcp.reserved": "FT_UINT16",
    "tcp.options.mptcp.flags": "FT_UINT8",
    "tcp.options.mptcp.backup.flag": "FT_UINT8",
    "tcp.options.mptcp.checksumreq.flags": "FT_UINT8",
    "tcp.options.mptcp.extensibility.flag": "FT_UINT8",
    "tcp.options.mptcp.nomoresubflows.flag": "FT_UINT8",
    "tcp.options.mptcp.sha1.flag": "FT_UINT8",
    "tcp.options.mptcp.sha256.flag": "FT_UINT8",
    "tcp.options.mptcp.datafin.flag": "FT_UINT8",
    "tcp.options.mptcp.dseqn8.flag": "FT_UINT8",
    "tcp.options.mptcp.dseqnpresent.flag": "FT_UINT8",
    "tcp.options.mptcp.dataack8.flag": "FT_UINT8",
    "tcp.options.mptcp.dataackpresent.flag": "FT_UINT8",
    "tcp.options.mptcp.reserved.flag": "FT_UINT8",
    "tcp.options.mptcp.flag_U.flag": "FT_BOOLEAN",
    "tcp.options.mptcp.flag_V.flag": "FT_BOOLEAN",
    "tcp.options.mptcp.flag_W.flag": "FT_BOOLEAN",
    "tcp.options.mptcp.flag_T.flag": "FT_BOOLEAN",
    "tcp.options.mptcp.rst_reason": "FT_UINT8",
    "tcp.options.mptcp.addrid": "FT_UINT8",
    "tcp.options.mptcp.sendkey": "FT_UINT64",
    "tcp.options.mptcp.recvkey": "FT_UINT64",
    "tcp.options.mptcp.recvtok": "FT_UINT32",
    "tcp.options.mptcp.sendrand": "FT_UINT32",
    "tcp.options.mptcp.sendtrunchmac": "FT_UINT64",
    "tcp.options.mptcp.sendhmac": "FT_BYTES",
    "tcp.options.mptcp.addaddrtrunchmac": "FT_UINT64",
    "tcp.options.mptcp.rawdataack": "FT_UINT64",
    "tcp.options.mptcp.rawdataseqno": "FT_UINT64",
    "tcp.options.mptcp.subflowseqno": "FT_UINT32",
    "tcp.options.mptcp.datalvllen": "FT_UINT16",
    "tcp.options.mptcp.checksum": "FT_UINT16",
    "tcp.options.mptcp.ipver": "FT_UINT8",
    "tcp.options.mptcp.echo": "FT_UINT8",
    "tcp.options.mptcp.ipv4": "FT_IPv4",
    "tcp.options.mptcp.ipv6": "FT_IPv6",
    "tcp.options.mptcp.port": "FT_UINT16",
    "mptcp.rm_addr.count": "FT_UINT8",
    "mptcp.stream": "FT_UINT32",
    "mptcp.analysis": "FT_NONE",
    "mptcp.master": "FT_BOOLEAN",
    "mptcp.analysis.subflows": "FT_STRING",
    "mptcp.expected_token": "FT_UINT32",
    "mptcp.expected_idsn": "FT_UINT64",
    "mptcp.dss.dsn": "FT_UINT64",
    "mptcp.ack": "FT_UINT64",
    "mptcp.rawdsn64": "FT_UINT64",
    "mptcp.dsn": "FT_UINT64",
    "mptcp.related_mapping": "FT_FRAMENUM",
    "mptcp.reinjection_of": "FT_FRAMENUM",
    "mptcp.reinjected_in": "FT_FRAMENUM",
    "frame": "FT_PROTOCOL",
    "tcp": "FT_PROTOCOL",
    "ip": "FT_PROTOCOL",
    "ipv6": "FT_PROTOCOL",
    "mptcp": "FT_PROTOCOL",
    "vlan": "FT_PROTOCOL",
    "ieee8021ad": "FT_PROTOCOL",
    "mpls": "FT_PROTOCOL",
    "ppp": "FT_PROTOCOL",
    "pppoes": "FT_PROTOCOL",
    "pppoed": "FT_PROTOCOL",
    "gre": "FT_PROTOCOL",
    "udp": "FT_PROTOCOL",
    "vxlan": "FT_PROTOCOL",
    "geneve": "FT_PROTOCOL",
    "gtp": "FT_PROTOCOL",
}

#: type -> the name tshark's messages give it
TYPE_NAMES: dict[str, str] = {
    "FT_ABSOLUTE_TIME": "Date and time",
    "FT_BOOLEAN": "Boolean",
    "FT_BYTES": "Byte sequence",
    "FT_FRAMENUM": "Frame number",
    "FT_INT32": "Signed integer (4 bytes)",
    "FT_IPv4": "IPv4 address",
    "FT_IPv6": "IPv6 address",
    "FT_NONE": "Label",
    "FT_PROTOCOL": "Protocol",
    "FT_RELATIVE_TIME": "Time offset",
    "FT_STRING": "Character string",
    "FT_UINT16": "Unsigned integer (2 bytes)",
    "FT_UINT24": "Unsigned integer (3 bytes)",
    "FT_UINT32": "Unsigned integer (4 bytes)",
    "FT_UINT64": "Unsigned integer (8 bytes)",
    "FT_UINT8": "Unsigned integer (1 byte)",
}

#: boolean field -> its true and false strings
TRUE_FALSE: dict[str, tuple[str, str]] = {
    "tcp.flags.urg": ("Set", "Not set"),
    "tcp.flags.ack": ("Set", "Not set"),
    "tcp.flags.push": ("Set", "Not set"),
    "tcp.flags.reset": ("Set", "Not set"),
    "tcp.flags.syn": ("Set", "Not set"),
    "tcp.flags.fin": ("Set", "Not set"),
    "tcp.options.mptcp.flag_U.flag": ("Set", "Not set"),
    "tcp.options.mptcp.flag_V.flag": ("Set", "Not set"),
    "tcp.options.mptcp.flag_W.flag": ("Set", "Not set"),
    "tcp.options.mptcp.flag_T.flag": ("Set", "Not set"),
}

# field, value and name, separated by \x1f; entries separated by \x1e
_VALUES = (
    "geneve.proto_type\x1f0x800\x1fIPv4\x1egeneve.proto_type\x1f0x86dd\x1fIPv6\x1egeneve.proto_type\x1f"
    "0x8100\x1f802.1Q Virtual LAN\x1egeneve.proto_type\x1f0x8102\x1fSimple Loop Protection Protocol\x1e"
    "geneve.proto_type\x1f0x8103\x1fVirtual LACP\x1egeneve.proto_type\x1f0x8104\x1fSimple Loop Protecti"
    "on Protocol (old)\x1egeneve.proto_type\x1f0x806\x1fARP\x1egeneve.proto_type\x1f0x872d\x1fCisco Wir"
    "eless Lan Context Control Protocol\x1egeneve.proto_type\x1f0x8783\x1fMotorola Media Independent Ne"
    "twork Transport\x1egeneve.proto_type\x1f0x2452\x1fIEEE 802.11 (Centrino promiscuous)\x1egeneve.pro"
    "to_type\x1f0x600\x1fXNS Internet Datagram Protocol\x1egeneve.proto_type\x1f0x805\x1fX.25 Layer 3"
    "\x1egeneve.proto_type\x1f0x842\x1fWake on LAN\x1egeneve.proto_type\x1f0x8f0\x1fWiMax Mac-to-Mac"
    "\x1egeneve.proto_type\x1f0x3e3f\x1fEPL_V1\x1egeneve.proto_type\x1f0x8035\x1fRARP\x1egeneve.proto_t"
    "ype\x1f0x8038\x1fDEC LanBridge\x1egeneve.proto_type\x1f0x809b\x1fAppleTalk LLAP bridging\x1egeneve"
    ".proto_type\x1f0x80d5\x1fSNA-over-Ethernet\x1egeneve.proto_type\x1f0x80e1\x1fEtherNet/IP Device Le"
    "vel Ring\x1egeneve.proto_type\x1f0x80f3\x1fAARP\x1egeneve.proto_type\x1f0x8137\x1fNetware IPX/SPX"
    "\x1egeneve.proto_type\x1f0xbad\x1fVines IP\x1egeneve.proto_type\x1f0xbaf\x1fVines Echo\x1egeneve.p"
    "roto_type\x1f0x1984\x1fNetmon Train\x1egeneve.proto_type\x1f0x9000\x1fLoopback\x1egeneve.proto_typ"
    "e\x1f0x885a\x1fFoundry proprietary\x1egeneve.proto_type\x1f0x80ff\x1fWellfleet Compression Protoco"
    "l\x1egeneve.proto_type\x1f0x8181\x1fSpanning Tree Protocol\x1egeneve.proto_type\x1f0x81fd\x1fCable"
    "tron Interswitch Message Protocol\x1egeneve.proto_type\x1f0x81ff\x1fCabletron SFVLAN 1.8 Tag-Based"
    " Flood\x1egeneve.proto_type\x1f0x8204\x1fQNX 6 QNET protocol\x1egeneve.proto_type\x1f0x8863\x1fPPP"
    "oE Discovery\x1egeneve.proto_type\x1f0x8864\x1fPPPoE Session\x1egeneve.proto_type\x1f0x886c\x1fHom"
    "ePNA, wlan link local tunnel\x1egeneve.proto_type\x1f0x886d\x1fIntel ANS probe\x1egeneve.proto_typ"
    "e\x1f0x886f\x1fMS NLB heartbeat\x1egeneve.proto_type\x1f0x8870\x1fJumbo LLC\x1egeneve.proto_type"
    "\x1f0x8874\x1fBroadcom tag\x1egeneve.proto_type\x1f0x887b\x1fHomeplug\x1egeneve.proto_type\x1f0x88"
    "e1\x1fHomeplug AV\x1egeneve.proto_type\x1f0x88e3\x1fMRP\x1egeneve.proto_type\x1f0x88a8\x1f802.1ad "
    "Provider Bridge (Q-in-Q)\x1egeneve.proto_type\x1f0x88e5\x1f802.1AE (MACsec)\x1egeneve.proto_type"
    "\x1f0x893a\x1f1905.1a Convergent Digital Home Network for Heterogenous Technologies\x1egeneve.prot"
    "o_type\x1f0x88e7\x1f802.1ah Provider Backbone Bridge (mac-in-mac)\x1egeneve.proto_type\x1f0x893f"
    "\x1f802.1br Bridge Port Extension E-Tag\x1egeneve.proto_type\x1f0x888e\x1f802.1X Authentication"
    "\x1egeneve.proto_type\x1f0x88c7\x1f802.11i Pre-Authentication\x1egeneve.proto_type\x1f0x8847\x1fMP"
    "LS label switched packet\x1egeneve.proto_type\x1f0x8848\x1fMPLS multicast label switched packet"
    "\x1egeneve.proto_type\x1f0x3c07\x1f3Com NBP Datagram\x1egeneve.proto_type\x1f0x6000\x1fDEC proto"
    "\x1egeneve.proto_type\x1f0x6001\x1fDEC DNA Dump/Load\x1egeneve.proto_type\x1f0x6002\x1fDEC DNA Rem"
    "ote Console\x1egeneve.proto_type\x1f0x6003\x1fDEC DNA Routing\x1egeneve.proto_type\x1f0x6004\x1fDE"
    "C LAT\x1egeneve.proto_type\x1f0x6005\x1fDEC Diagnostics\x1egeneve.proto_type\x1f0x6006\x1fDEC Cust"
    "omer use\x1egeneve.proto_type\x1f0x6007\x1fDEC LAVC/SCA\x1egeneve.proto_type\x1f0x8041\x1fDEC LAST"
    "\x1egeneve.proto_type\x1f0x6558\x1fTransparent Ethernet bridging\x1egeneve.proto_type\x1f0x2001"
    "\x1fCisco Group Management Protocol\x1egeneve.proto_type\x1f0x22e5\x1fGigamon Header\x1egeneve.pro"
    "to_type\x1f0x22ea\x1f802.1Qat Multiple Stream Reservation Protocol\x1egeneve.proto_type\x1f0x88f6"
    "\x1f802.1ak Multiple Mac Registration Protocol\x1egeneve.proto_type\x1f0x894f\x1fNetwork Service H"
    "eader\x1egeneve.proto_type\x1f0x8988\x1fPA HB Backup\x1egeneve.proto_type\x1f0x22f0\x1fIEEE 1722 A"
    "udio Video Transport Protocol\x1egeneve.proto_type\x1f0x22f1\x1fRobust Header Compression(RoHC)"
    "\x1egeneve.proto_type\x1f0x22f3\x1fTransparent Interconnection of Lots of Links\x1egeneve.proto_ty"
    "pe\x1f0x22f4\x1fIntermediate System to Intermediate System\x1egeneve.proto_type\x1f0x8808\x1fMAC C"
    "ontrol\x1egeneve.proto_type\x1f0x8809\x1fSlow Protocols\x1egeneve.proto_type\x1f0x9021\x1fReal-Tim"
    "e Media Access Control\x1egeneve.proto_type\x1f0x9022\x1fReal-Time Configuration Protocol\x1egenev"
    "e.proto_type\x1f0x8881\x1fCDMA2000 A10 Unstructured byte stream\x1egeneve.proto_type\x1f0x8884\x1f"
    "ATM over Ethernet\x1egeneve.proto_type\x1f0x8892\x1fPROFINET\x1egeneve.proto_type\x1f0x8899\x1fRea"
    "ltek Layer 2 Protocols\x1egeneve.proto_type\x1f0x88a2\x1fATA over Ethernet\x1egeneve.proto_type"
    "\x1f0x88a4\x1fEtherCAT frame\x1egeneve.proto_type\x1f0x88a1\x1fTelkonet powerline\x1egeneve.proto_"
    "type\x1f0x88ab\x1fETHERNET Powerlink v2\x1egeneve.proto_type\x1f0x88ad\x1fXiMeta Technology\x1egen"
    "eve.proto_type\x1f0x889b\x1fCSM_ENCAPS Protocol\x1egeneve.proto_type\x1f0x88b5\x1fLocal Experiment"
    "al Ethertype 1\x1egeneve.proto_type\x1f0x88b6\x1fLocal Experimental Ethertype 2\x1egeneve.proto_ty"
    "pe\x1f0x88b7\x1fIEEE 802a OUI Extended Ethertype\x1egeneve.proto_type\x1f0x88b8\x1fIEC 61850/GOOSE"
    "\x1egeneve.proto_type\x1f0x88b9\x1fIEC 61850/GSE management services\x1egeneve.proto_type\x1f0x88b"
    "a\x1fIEC 61850/SV (Sampled Value Transmission\x1egeneve.proto_type\x1f0x88ca\x1fTransparent Inter "
    "Process Communication\x1egeneve.proto_type\x1f0x88cc\x1f802.1 Link Layer Discovery Protocol (LLDP)"
    "\x1egeneve.proto_type\x1f0x88d2\x1fCDMA2000 A10 3GPP2 Packet\x1egeneve.proto_type\x1f0x891d\x1fTTE"
    "thernet Protocol Control Frame\x1egeneve.proto_type\x1f0x88d8\x1fCircuit Emulation Services over E"
    "thernet (MEF8)\x1egeneve.proto_type\x1f0x88d9\x1fLink Layer Topology Discovery (LLTD)\x1egeneve.pr"
    "oto_type\x1f0x88dc\x1f(WAVE) Short Message Protocol (WSM)\x1egeneve.proto_type\x1f0x88de\x1fVMware"
    " Lab Manager\x1egeneve.proto_type\x1f0x8819\x1fCirrus Cobranet Packet\x1egeneve.proto_type\x1f0x81"
    "33\x1fJuniper Netscreen Redundant Protocol\x1egeneve.proto_type\x1f0x9104\x1fEERO Broadcast Packet"
    "\x1egeneve.proto_type\x1f0x8021\x1fPPP IP Control Protocol\x1egeneve.proto_type\x1f0xc021\x1fPPP L"
    "ink Control Protocol\x1egeneve.proto_type\x1f0xc023\x1fPPP Password Authentication Protocol\x1egen"
    "eve.proto_type\x1f0x80fd\x1fPPP Compression Control Protocol\x1egeneve.proto_type\x1f0xcafe\x1fVer"
    "itas Low Latency Transport (not officially registered)\x1egeneve.proto_type\x1f0x8902\x1fIEEE 802."
    "1ag Connectivity Fault Management (CFM) protocol\x1egeneve.proto_type\x1f0x8903\x1fData Center Eth"
    "ernet (DCE) protocol(Cisco)\x1egeneve.proto_type\x1f0x8906\x1fFibre Channel over Ethernet\x1egenev"
    "e.proto_type\x1f0x890d\x1fIEEE 802.11 data encapsulation\x1egeneve.proto_type\x1f0x8911\x1fLINX IP"
    "C Protocol\x1egeneve.proto_type\x1f0x8914\x1fFCoE Initialization Protocol\x1egeneve.proto_type\x1f"
    "0x8917\x1fMedia Independent Handover Protocol\x1egeneve.proto_type\x1f0x88ee\x1fEthernet Local Man"
    "agement Interface (MEF16)\x1egeneve.proto_type\x1f0x88f7\x1fPTPv2 over Ethernet (IEEE1588)\x1egene"
    "ve.proto_type\x1f0x88f8\x1fNetwork Controller Sideband Interface\x1egeneve.proto_type\x1f0x88fb"
    "\x1fParallel Redundancy Protocol (PRP) and HSR Supervision (IEC62439 Part 3)\x1egeneve.proto_type"
    "\x1f0x8901\x1fFlow Layer Internal Protocol\x1egeneve.proto_type\x1f0x8915\x1fRDMA over Converged E"
    "thernet\x1egeneve.proto_type\x1f0xd00d\x1fDigium TDM over Ethernet Protocol\x1egeneve.proto_type"
    "\x1f0x88b4\x1fWAI Authentication Protocol\x1egeneve.proto_type\x1f0x8926\x1fVN-Tag\x1egeneve.proto"
    "_type\x1f0x892b\x1fSchweitzer Engineering Labs Layer 2 Protocol\x1egeneve.proto_type\x1f0x892f\x1f"
    "High-availability Seamless Redundancy (IEC62439 Part 3)\x1egeneve.proto_type\x1f0x8ff\x1fAX.25\x1e"
    "geneve.proto_type\x1f0x8909\x1fCiscoMetaData\x1egeneve.proto_type\x1f0x8947\x1fGeoNetworking\x1ege"
    "neve.proto_type\x1f0xc0de\x1feXpressive Internet Protocol\x1egeneve.proto_type\x1f0xc0df\x1fNeighb"
    "orhood Watch Protocol\x1egeneve.proto_type\x1f0x892d\x1fbluecom Protocol\x1egeneve.proto_type\x1f0"
    "x9100\x1fQinQ: old non-standard 802.1ad\x1egeneve.proto_type\x1f0x99fe\x1fTechnically Enhanced Cap"
    "ture Module Protocol (TECMP)\x1egeneve.proto_type\x1f0xa0ed\x1f6LoWPAN\x1egeneve.proto_type\x1f0xd"
    "28b\x1fArista Timestamp\x1egeneve.proto_type\x1f0xaefe\x1feCPRI\x1egeneve.proto_type\x1f0xb4e3\x1f"
    "CableLabs Layer-3 Protocol\x1egeneve.proto_type\x1f0xe555\x1fEXos internal Extra Header\x1egeneve."
    "proto_type\x1f0xfff2\x1fCisco ACI ARP gleaning\x1egeneve.proto_type\x1f0xf1c1\x1f802.1CB Frame Rep"
    "lication and Elimination for Reliability\x1egre.proto\x1f0x0\x1fPossible GRE keepalive packet\x1eg"
    "re.proto\x1f0x880b\x1fPPP\x1egre.proto\x1f0x800\x1fIP\x1egre.proto\x1f0x806\x1fARP\x1egre.proto"
    "\x1f0xfe\x1fOSI\x1egre.proto\x1f0x883e\x1fWCCP\x1egre.proto\x1f0x2000\x1fCDP (Cisco)\x1egre.proto"
    "\x1f0x2001\x1fNHRP\x1egre.proto\x1f0x88be\x1fERSPAN\x1egre.proto\x1f0x22eb\x1fERSPAN III\x1egre.pr"
    "oto\x1f0x6400\x1fMIKROTIK EoIP\x1egre.proto\x1f0xfeae\x1fAIROHIVE AP AP\x1egre.proto\x1f0x8137\x1f"
    "IPX\x1egre.proto\x1f0x6558\x1fTransparent Ethernet bridging\x1egre.proto\x1f0x6559\x1fFrame Relay"
    "\x1egre.proto\x1f0x86dd\x1fIPv6\x1egre.proto\x1f0x8847\x1fMPLS label switched packet\x1egre.proto"
    "\x1f0x894f\x1fNetwork Service Header\x1egre.proto\x1f0x8881\x1fCDMA2000 A10 Unstructured byte stre"
    "am\x1egre.proto\x1f0x88d2\x1fCDMA2000 A10 3GPP2 Packet\x1egre.proto\x1f0x8909\x1fCiscoMetaData\x1e"
    "gre.proto\x1f0xb7ea\x1fHuawei GRE bonding\x1egre.proto\x1f0x8200\x1fARUBA WLAN\x1egre.proto\x1f0x8"
    "210\x1fARUBA WLAN\x1egre.proto\x1f0x8220\x1fARUBA WLAN\x1egre.proto\x1f0x8230\x1fARUBA WLAN\x1egre"
    ".proto\x1f0x8240\x1fARUBA WLAN\x1egre.proto\x1f0x8250\x1fARUBA WLAN\x1egre.proto\x1f0x8260\x1fARUB"
    "A WLAN\x1egre.proto\x1f0x8270\x1fARUBA WLAN\x1egre.proto\x1f0x8280\x1fARUBA WLAN\x1egre.proto\x1f0"
    "x8290\x1fARUBA WLAN\x1egre.proto\x1f0x82a0\x1fARUBA WLAN\x1egre.proto\x1f0x82b0\x1fARUBA WLAN\x1eg"
    "re.proto\x1f0x82c0\x1fARUBA WLAN\x1egre.proto\x1f0x82d0\x1fARUBA WLAN\x1egre.proto\x1f0x82e0\x1fAR"
    "UBA WLAN\x1egre.proto\x1f0x82f0\x1fARUBA WLAN\x1egre.proto\x1f0x8300\x1fARUBA WLAN\x1egre.proto"
    "\x1f0x8310\x1fARUBA WLAN\x1egre.proto\x1f0x8320\x1fARUBA WLAN\x1egre.proto\x1f0x8330\x1fARUBA WLAN"
    "\x1egre.proto\x1f0x8340\x1fARUBA WLAN\x1egre.proto\x1f0x8350\x1fARUBA WLAN\x1egre.proto\x1f0x8360"
    "\x1fARUBA WLAN\x1egre.proto\x1f0x8370\x1fARUBA WLAN\x1egre.proto\x1f0x9000\x1fARUBA WLAN\x1egtp.me"
    "ssage\x1f0\x1fFor future use\x1egtp.message\x1f1\x1fEcho request\x1egtp.message\x1f2\x1fEcho respo"
    "nse\x1egtp.message\x1f3\x1fVersion not supported\x1egtp.message\x1f4\x1fNode alive request\x1egtp."
    "message\x1f5\x1fNode alive response\x1egtp.message\x1f6\x1fRedirection request\x1egtp.message\x1f7"
    "\x1fRedirection response\x1egtp.message\x1f16\x1fCreate PDP context request\x1egtp.message\x1f17"
    "\x1fCreate PDP context response\x1egtp.message\x1f18\x1fUpdate PDP context request\x1egtp.message"
    "\x1f19\x1fUpdate PDP context response\x1egtp.message\x1f20\x1fDelete PDP context request\x1egtp.me"
    "ssage\x1f21\x1fDelete PDP context response\x1egtp.message\x1f22\x1fInitiate PDP Context Activation"
    " Request\x1egtp.message\x1f23\x1fInitiate PDP Context Activation Response\x1egtp.message\x1f24\x1f"
    "Delete AA PDP Context Request\x1egtp.message\x1f25\x1fDelete AA PDP Context Response\x1egtp.messag"
    "e\x1f26\x1fError indication\x1egtp.message\x1f27\x1fPDU notification request\x1egtp.message\x1f28"
    "\x1fPDU notification response\x1egtp.message\x1f29\x1fPDU notification reject request\x1egtp.messa"
    "ge\x1f30\x1fPDU notification reject response\x1egtp.message\x1f31\x1fSupported extension header no"
    "tification\x1egtp.message\x1f32\x1fSend routing information for GPRS request\x1egtp.message\x1f33"
    "\x1fSend routing information for GPRS response\x1egtp.message\x1f34\x1fFailure report request\x1eg"
    "tp.message\x1f35\x1fFailure report response\x1egtp.message\x1f36\x1fNote MS GPRS present request"
    "\x1egtp.message\x1f37\x1fNote MS GPRS present response\x1egtp.message\x1f48\x1fIdentification requ"
    "est\x1egtp.message\x1f49\x1fIdentification response\x1egtp.message\x1f50\x1fSGSN context request"
    "\x1egtp.message\x1f51\x1fSGSN context response\x1egtp.message\x1f52\x1fSGSN context acknowledgemen"
    "t\x1egtp.message\x1f53\x1fForward relocation request\x1egtp.message\x1f54\x1fForward relocation re"
    "sponse\x1egtp.message\x1f55\x1fForward relocation complete\x1egtp.message\x1f56\x1fRelocation canc"
    "el request\x1egtp.message\x1f57\x1fRelocation cancel response\x1egtp.message\x1f58\x1fForward SRNS"
    " context\x1egtp.message\x1f59\x1fForward relocation complete acknowledge\x1egtp.message\x1f60\x1fF"
    "orward SRNS context acknowledge\x1egtp.message\x1f61\x1fUE Registration Query Request\x1egtp.messa"
    "ge\x1f62\x1fUE Registration Query Response\x1egtp.message\x1f70\x1fRAN Information Relay\x1egtp.me"
    "ssage\x1f96\x1fMBMS Notification Request\x1egtp.message\x1f97\x1fMBMS Notification Response\x1egtp"
    ".message\x1f98\x1fMBMS Notification Reject Request\x1egtp.message\x1f99\x1fMBMS Notification Rejec"
    "t Response\x1egtp.message\x1f100\x1fCreate MBMS Context Request\x1egtp.message\x1f101\x1fCreate MB"
    "MS Context Response\x1egtp.message\x1f102\x1fUpdate MBMS Context Request\x1egtp.message\x1f103\x1f"
    "Update MBMS Context Response\x1egtp.message\x1f104\x1fDelete MBMS Context Request\x1egtp.message"
    "\x1f105\x1fDelete MBMS Context Response\x1egtp.message\x1f112\x1fMBMS Registration Request\x1egtp."
    "message\x1f113\x1fMBMS Registration Response\x1egtp.message\x1f114\x1fMBMS De-Registration Request"
    "\x1egtp.message\x1f115\x1fMBMS De-Registration Response\x1egtp.message\x1f116\x1fMBMS Session Star"
    "t Request\x1egtp.message\x1f117\x1fMBMS Session Start Response\x1egtp.message\x1f118\x1fMBMS Sessi"
    "on Stop Request\x1egtp.message\x1f119\x1fMBMS Session Stop Response\x1egtp.message\x1f120\x1fMBMS "
    "Session Update Request\x1egtp.message\x1f121\x1fMBMS Session Update Response\x1egtp.message\x1f128"
    "\x1fMS Info Change Notification Request\x1egtp.message\x1f129\x1fMS Info Change Notification Respo"
    "nse\x1egtp.message\x1f240\x1fData record transfer request\x1egtp.message\x1f241\x1fData record tra"
    "nsfer response\x1egtp.message\x1f254\x1fEnd Marker\x1egtp.message\x1f255\x1fT-PDU\x1eip.proto\x1f0"
    "\x1fIPv6 Hop-by-Hop Option\x1eip.proto\x1f1\x1fICMP\x1eip.proto\x1f2\x1fIGMP\x1eip.proto\x1f3\x1fG"
    "GP\x1eip.proto\x1f4\x1fIPIP\x1eip.proto\x1f5\x1fStream\x1eip.proto\x1f6\x1fTCP\x1eip.proto\x1f7"
    "\x1fCBT\x1eip.proto\x1f8\x1fEGP\x1eip.proto\x1f9\x1fIGRP\x1eip.proto\x1f10\x1fBBN RCC\x1eip.proto"
    "\x1f11\x1fNetwork Voice\x1eip.proto\x1f12\x1fPUP\x1eip.proto\x1f13\x1fARGUS\x1eip.proto\x1f14\x1fE"
    "MCON\x1eip.proto\x1f15\x1fXNET\x1eip.proto\x1f16\x1fCHAOS\x1eip.proto\x1f17\x1fUDP\x1eip.proto\x1f"
    "18\x1fMultiplex\x1eip.proto\x1f19\x1fDCN Measurement\x1eip.proto\x1f20\x1fHost Monitoring\x1eip.pr"
    "oto\x1f21\x1fPacket radio\x1eip.proto\x1f22\x1fIDP\x1eip.proto\x1f23\x1fTrunk-1\x1eip.proto\x1f24"
    "\x1fTrunk-2\x1eip.proto\x1f25\x1fLeaf-1\x1eip.proto\x1f26\x1fLeaf-2\x1eip.proto\x1f27\x1fReliable "
    "Data\x1eip.proto\x1f28\x1fIRT\x1eip.proto\x1f29\x1fISO TP4\x1eip.proto\x1f30\x1fBulk Data\x1eip.pr"
    "oto\x1f31\x1fMFE NSP\x1eip.proto\x1f32\x1fMerit Internodal\x1eip.proto\x1f33\x1fDatagram Congestio"
    "n Control Protocol\x1eip.proto\x1f34\x1f3rd Party Connect\x1eip.proto\x1f35\x1fInter-Domain Policy"
    " Routing Protocol\x1eip.proto\x1f36\x1fXTP\x1eip.proto\x1f37\x1fDatagram delivery\x1eip.proto\x1f3"
    "8\x1fControl Message\x1eip.proto\x1f39\x1fTP++\x1eip.proto\x1f40\x1fIL\x1eip.proto\x1f41\x1fIPv6"
    "\x1eip.proto\x1f42\x1fSource demand routing\x1eip.proto\x1f43\x1fRouting Header for IPv6\x1eip.pro"
    "to\x1f44\x1fFragment Header for IPv6\x1eip.proto\x1f45\x1fInter-Domain Routing Protocol\x1eip.prot"
    "o\x1f46\x1fReservation Protocol\x1eip.proto\x1f47\x1fGeneric Routing Encapsulation\x1eip.proto\x1f"
    "48\x1fDynamic source routing\x1eip.proto\x1f49\x1fBNA\x1eip.proto\x1f50\x1fEncap Security Payload"
    "\x1eip.proto\x1f51\x1fAuthentication Header\x1eip.proto\x1f52\x1fINSLP\x1eip.proto\x1f53\x1fSWIPE"
    "\x1eip.proto\x1f54\x1fNBMA ARP\x1eip.proto\x1f55\x1fIP Mobility\x1eip.proto\x1f56\x1fTLSP Kryptone"
    "t\x1eip.proto\x1f57\x1fSKIP\x1eip.proto\x1f58\x1fICMPv6\x1eip.proto\x1f59\x1fNo Next Header for IP"
    "v6\x1eip.proto\x1f60\x1fDestination Options for IPv6\x1eip.proto\x1f61\x1fany host internal protoc"
    "ol\x1eip.proto\x1f62\x1fMobile IPv6 (old)\x1eip.proto\x1f63\x1fany local network\x1eip.proto\x1f64"
    "\x1fSATNET EXPAK\x1eip.proto\x1f65\x1fKryptolan\x1eip.proto\x1f66\x1fRemote Virtual Disk\x1eip.pro"
    "to\x1f67\x1fIPPC\x1eip.proto\x1f68\x1fany distributed file system\x1eip.proto\x1f69\x1fSATNET Moni"
    "toring\x1eip.proto\x1f70\x1fVISA\x1eip.proto\x1f71\x1fIPCV\x1eip.proto\x1f72\x1fCPNX\x1eip.proto"
    "\x1f73\x1fCPHB\x1eip.proto\x1f74\x1fWang Span\x1eip.proto\x1f75\x1fPacket Video\x1eip.proto\x1f76"
    "\x1fBackroom SATNET Mon\x1eip.proto\x1f77\x1fSun ND Protocol\x1eip.proto\x1f78\x1fWideband Mon\x1e"
    "ip.proto\x1f79\x1fWideband Expak\x1eip.proto\x1f80\x1fISO Internet Protocol\x1eip.proto\x1f81\x1fV"
    "MTP\x1eip.proto\x1f82\x1fSecure VMTP\x1eip.proto\x1f83\x1fVINES\x1eip.proto\x1f84\x1fTTP\x1eip.pro"
    "to\x1f85\x1fNSFNET IGP\x1eip.proto\x1f86\x1fDissimilar Gateway\x1eip.proto\x1f87\x1fTCF\x1eip.prot"
    "o\x1f88\x1fEIGRP\x1eip.proto\x1f89\x1fOSPF IGP\x1eip.proto\x1f90\x1fSprite RPC\x1eip.proto\x1f91"
    "\x1fLocus ARP\x1eip.proto\x1f92\x1fMulticast Transport\x1eip.proto\x1f93\x1fAX.25 Frames\x1eip.pro"
    "to\x1f94\x1fIP in IP\x1eip.proto\x1f95\x1fMICP\x1eip.proto\x1f96\x1fSemaphore\x1eip.proto\x1f97"
    "\x1fEther in IP\x1eip.proto\x1f98\x1fENCAP\x1eip.proto\x1f99\x1fany private encryption scheme\x1ei"
    "p.proto\x1f100\x1fGMTP\x1eip.proto\x1f101\x1fIpsilon Flow\x1eip.proto\x1f102\x1fPNNI over IP\x1eip"
    ".proto\x1f103\x1fPIM\x1eip.proto\x1f104\x1fARIS\x1eip.proto\x1f105\x1fSCPS\x1eip.proto\x1f106\x1fQ"
    "NX\x1eip.proto\x1f107\x1fActive Networks\x1eip.proto\x1f108\x1fIPComp\x1eip.proto\x1f109\x1fSitara"
    " Networks\x1eip.proto\x1f110\x1fCompaq Peer\x1eip.proto\x1f111\x1fIPX IN IP\x1eip.proto\x1f112\x1f"
    "VRRP\x1eip.proto\x1f113\x1fPGM\x1eip.proto\x1f114\x1fany 0-hop protocol\x1eip.proto\x1f115\x1fLaye"
    "r 2 Tunneling\x1eip.proto\x1f116\x1fDDX\x1eip.proto\x1f117\x1fIATP\x1eip.proto\x1f118\x1fSTP\x1eip"
    ".proto\x1f119\x1fSpectraLink\x1eip.proto\x1f120\x1fUTI\x1eip.proto\x1f121\x1fSMP\x1eip.proto\x1f12"
    "2\x1fSM\x1eip.proto\x1f123\x1fPTP\x1eip.proto\x1f124\x1fISIS over IP\x1eip.proto\x1f125\x1fFIRE"
    "\x1eip.proto\x1f126\x1fCRTP\x1eip.proto\x1f127\x1fCRUDP\x1eip.proto\x1f128\x1fSSCOPMCE\x1eip.proto"
    "\x1f129\x1fIPLT\x1eip.proto\x1f130\x1fSecure Packet\x1eip.proto\x1f131\x1fPIPE\x1eip.proto\x1f132"
    "\x1fSCTP\x1eip.proto\x1f133\x1fFibre Channel\x1eip.proto\x1f134\x1fRSVP E2EI\x1eip.proto\x1f135"
    "\x1fMobile IPv6\x1eip.proto\x1f136\x1fUDPLite\x1eip.proto\x1f137\x1fMPLS in IP\x1eip.proto\x1f138"
    "\x1fMANET\x1eip.proto\x1f139\x1fHIP\x1eip.proto\x1f140\x1fShim6 header\x1eip.proto\x1f141\x1fWESP"
    "\x1eip.proto\x1f142\x1fROHC\x1eip.proto\x1f143\x1fEthernet\x1eip.proto\x1f144\x1fUnassigned\x1eip."
    "proto\x1f145\x1fUnassigned\x1eip.proto\x1f146\x1fUnassigned\x1eip.proto\x1f147\x1fUnassigned\x1eip"
    ".proto\x1f148\x1fUnassigned\x1eip.proto\x1f149\x1fUnassigned\x1eip.proto\x1f150\x1fUnassigned\x1ei"
    "p.proto\x1f151\x1fUnassigned\x1eip.proto\x1f152\x1fUnassigned\x1eip.proto\x1f153\x1fUnassigned\x1e"
    "ip.proto\x1f154\x1fUnassigned\x1eip.proto\x1f155\x1fUnassigned\x1eip.proto\x1f156\x1fUnassigned"
    "\x1eip.proto\x1f157\x1fUnassigned\x1eip.proto\x1f158\x1fUnassigned\x1eip.proto\x1f159\x1fUnassigne"
    "d\x1eip.proto\x1f160\x1fUnassigned\x1eip.proto\x1f161\x1fUnassigned\x1eip.proto\x1f162\x1fUnassign"
    "ed\x1eip.proto\x1f163\x1fUnassigned\x1eip.proto\x1f164\x1fUnassigned\x1eip.proto\x1f165\x1fUnassig"
    "ned\x1eip.proto\x1f166\x1fUnassigned\x1eip.proto\x1f167\x1fUnassigned\x1eip.proto\x1f168\x1fUnassi"
    "gned\x1eip.proto\x1f169\x1fUnassigned\x1eip.proto\x1f170\x1fUnassigned\x1eip.proto\x1f171\x1fUnass"
    "igned\x1eip.proto\x1f172\x1fUnassigned\x1eip.proto\x1f173\x1fAX/4000 Testframe\x1eip.proto\x1f174"
    "\x1fUnassigned\x1eip.proto\x1f175\x1fUnassigned\x1eip.proto\x1f176\x1fUnassigned\x1eip.proto\x1f17"
    "7\x1fUnassigned\x1eip.proto\x1f178\x1fUnassigned\x1eip.proto\x1f179\x1fUnassigned\x1eip.proto\x1f1"
    "80\x1fUnassigned\x1eip.proto\x1f181\x1fUnassigned\x1eip.proto\x1f182\x1fUnassigned\x1eip.proto\x1f"
    "183\x1fUnassigned\x1eip.proto\x1f184\x1fUnassigned\x1eip.proto\x1f185\x1fUnassigned\x1eip.proto"
    "\x1f186\x1fUnassigned\x1eip.proto\x1f187\x1fUnassigned\x1eip.proto\x1f188\x1fUnassigned\x1eip.prot"
    "o\x1f189\x1fUnassigned\x1eip.proto\x1f190\x1fUnassigned\x1eip.proto\x1f191\x1fUnassigned\x1eip.pro"
    "to\x1f192\x1fUnassigned\x1eip.proto\x1f193\x1fUnassigned\x1eip.proto\x1f194\x1fUnassigned\x1eip.pr"
    "oto\x1f195\x1fUnassigned\x1eip.proto\x1f196\x1fUnassigned\x1eip.proto\x1f197\x1fUnassigned\x1eip.p"
    "roto\x1f198\x1fUnassigned\x1eip.proto\x1f199\x1fUnassigned\x1eip.proto\x1f200\x1fUnassigned\x1eip."
    "proto\x1f201\x1fUnassigned\x1eip.proto\x1f202\x1fUnassigned\x1eip.proto\x1f203\x1fUnassigned\x1eip"
    ".proto\x1f204\x1fUnassigned\x1eip.proto\x1f205\x1fUnassigned\x1eip.proto\x1f206\x1fUnassigned\x1ei"
    "p.proto\x1f207\x1fUnassigned\x1eip.proto\x1f208\x1fUnassigned\x1eip.proto\x1f209\x1fUnassigned\x1e"
    "ip.proto\x1f210\x1fUnassigned\x1eip.proto\x1f211\x1fUnassigned\x1eip.proto\x1f212\x1fUnassigned"
    "\x1eip.proto\x1f213\x1fUnassigned\x1eip.proto\x1f214\x1fUnassigned\x1eip.proto\x1f215\x1fUnassigne"
    "d\x1eip.proto\x1f216\x1fUnassigned\x1eip.proto\x1f217\x1fUnassigned\x1eip.proto\x1f218\x1fUnassign"
    "ed\x1eip.proto\x1f219\x1fUnassigned\x1eip.proto\x1f220\x1fUnassigned\x1eip.proto\x1f221\x1fUnassig"
    "ned\x1eip.proto\x1f222\x1fUnassigned\x1eip.proto\x1f223\x1fUnassigned\x1eip.proto\x1f224\x1fNovell"
    " NCS Heartbeat\x1empls.label\x1f0\x1fIPv4 Explicit-Null\x1empls.label\x1f1\x1fRouter Alert\x1empls"
    ".label\x1f2\x1fIPv6 Explicit-Null\x1empls.label\x1f3\x1fImplicit-Null\x1empls.label\x1f14\x1fOAM A"
    "lert\x1empls.label\x1f13\x1fGeneric Associated Channel Label (GAL)\x1empls.label\x1f7\x1fEntropy L"
    "abel Indicator (ELI)\x1eppp.protocol\x1f1\x1fPadding Protocol\x1eppp.protocol\x1f3\x1fROHC small-C"
    "ID\x1eppp.protocol\x1f5\x1fROHC large-CID\x1eppp.protocol\x1f33\x1fInternet Protocol version 4\x1e"
    "ppp.protocol\x1f35\x1fOSI Network Layer\x1eppp.protocol\x1f37\x1fXerox NS IDP\x1eppp.protocol\x1f3"
    "9\x1fDECnet Phase IV\x1eppp.protocol\x1f41\x1fAppletalk\x1eppp.protocol\x1f43\x1fNovell IPX\x1eppp"
    ".protocol\x1f45\x1fVan Jacobson Compressed TCP/IP\x1eppp.protocol\x1f47\x1fVan Jacobson Uncompress"
    "ed TCP/IP\x1eppp.protocol\x1f49\x1fBridging PDU\x1eppp.protocol\x1f51\x1fStream Protocol (ST-II)"
    "\x1eppp.protocol\x1f53\x1fBanyan Vines\x1eppp.protocol\x1f57\x1fAppleTalk EDDP\x1eppp.protocol\x1f"
    "59\x1fAppleTalk SmartBuffered\x1eppp.protocol\x1f61\x1fMulti-Link\x1eppp.protocol\x1f63\x1fNETBIOS"
    " Framing\x1eppp.protocol\x1f65\x1fCisco Systems\x1eppp.protocol\x1f67\x1fAscom Timeplex\x1eppp.pro"
    "tocol\x1f69\x1fFujitsu Link Backup and Load Balancing (LBLB)\x1eppp.protocol\x1f71\x1fDCA Remote L"
    "an\x1eppp.protocol\x1f73\x1fSerial Data Transport Protocol (PPP-SDTP)\x1eppp.protocol\x1f75\x1fSNA"
    " over 802.2\x1eppp.protocol\x1f77\x1fSNA\x1eppp.protocol\x1f79\x1fIPv6 Header Compression \x1eppp."
    "protocol\x1f81\x1fKNX Bridging Data\x1eppp.protocol\x1f83\x1fEncryption\x1eppp.protocol\x1f85\x1fI"
    "ndividual Link Encryption\x1eppp.protocol\x1f87\x1fInternet Protocol version 6\x1eppp.protocol\x1f"
    "89\x1fPPP Muxing\x1eppp.protocol\x1f91\x1fVendor-Specific Network Protocol (VSNP)\x1eppp.protocol"
    "\x1f93\x1fTRILL Network Protocol (TNP)\x1eppp.protocol\x1f97\x1fRTP IPHC Full Header\x1eppp.protoc"
    "ol\x1f99\x1fRTP IPHC Compressed TCP\x1eppp.protocol\x1f101\x1fRTP IPHC Compressed Non TCP\x1eppp.p"
    "rotocol\x1f103\x1fRTP IPHC Compressed UDP 8\x1eppp.protocol\x1f105\x1fRTP IPHC Compressed RTP 8"
    "\x1eppp.protocol\x1f111\x1fStampede Bridging\x1eppp.protocol\x1f115\x1fMP+ Protocol\x1eppp.protoco"
    "l\x1f193\x1fNTCITS IPI\x1eppp.protocol\x1f251\x1fSingle link compression in multilink\x1eppp.proto"
    "col\x1f253\x1fCompressed datagram\x1eppp.protocol\x1f513\x1f802.1d Hello Packets\x1eppp.protocol"
    "\x1f515\x1fIBM Source Routing BPDU\x1eppp.protocol\x1f517\x1fDEC LANBridge100 Spanning Tree\x1eppp"
    ".protocol\x1f519\x1fCisco Discovery Protocol\x1eppp.protocol\x1f521\x1fNetcs Twin Routing\x1eppp.p"
    "rotocol\x1f523\x1fSTP - Scheduled Transfer Protocol\x1eppp.protocol\x1f525\x1fEDP - Extreme Discov"
    "ery Protocol\x1eppp.protocol\x1f529\x1fOptical Supervisory Channel Protocol (OSCP)\x1eppp.protocol"
    "\x1f531\x1fOptical Supervisory Channel Protocol (OSCP)\x1eppp.protocol\x1f561\x1fLuxcom\x1eppp.pro"
    "tocol\x1f563\x1fSigma Network Systems\x1eppp.protocol\x1f565\x1fApple Client Server Protocol\x1epp"
    "p.protocol\x1f641\x1fMPLS Unicast\x1eppp.protocol\x1f643\x1fMPLS Multicast\x1eppp.protocol\x1f645"
    "\x1fIEEE p1284.4 standard - data packets\x1eppp.protocol\x1f647\x1fETSI TETRA Network Protocol Typ"
    "e 1\x1eppp.protocol\x1f649\x1fMultichannel Flow Treatment Protocol\x1eppp.protocol\x1f8291\x1fRTP "
    "IPHC Compressed TCP No Delta\x1eppp.protocol\x1f8293\x1fRTP IPHC Context State\x1eppp.protocol\x1f"
    "8295\x1fRTP IPHC Compressed UDP 16\x1eppp.protocol\x1f8297\x1fRTP IPHC Compressed RTP 16\x1eppp.pr"
    "otocol\x1f16385\x1fCray Communications Control Protocol\x1eppp.protocol\x1f16387\x1fCDPD Mobile Ne"
    "twork Registration Protocol\x1eppp.protocol\x1f16389\x1fExpand accelerator protocol\x1eppp.protoco"
    "l\x1f16391\x1fODSICP NCP\x1eppp.protocol\x1f16393\x1fDOCSIS DLL\x1eppp.protocol\x1f16395\x1fCetace"
    "an Network Detection Protocol\x1eppp.protocol\x1f16417\x1fStacker LZS\x1eppp.protocol\x1f16419\x1f"
    "RefTek Protocol\x1eppp.protocol\x1f16421\x1fFibre Channel\x1eppp.protocol\x1f16423\x1fEMIT Protoco"
    "ls\x1eppp.protocol\x1f16475\x1fVendor-Specific Protocol (VSP)\x1eppp.protocol\x1f16477\x1fTRILL Li"
    "nk State Protocol (TLSP)\x1eppp.protocol\x1f32801\x1fInternet Protocol Control Protocol\x1eppp.pro"
    "tocol\x1f32803\x1fOSI Network Layer Control Protocol\x1eppp.protocol\x1f32805\x1fXerox NS IDP Cont"
    "rol Protocol\x1eppp.protocol\x1f32807\x1fDECnet Phase IV Control Protocol\x1eppp.protocol\x1f32809"
    "\x1fAppleTalk Control Protocol\x1eppp.protocol\x1f32811\x1fNovell IPX Control Protocol\x1eppp.prot"
    "ocol\x1f32817\x1fBridging NCP\x1eppp.protocol\x1f32819\x1fStream Protocol Control Protocol\x1eppp."
    "protocol\x1f32821\x1fBanyan Vines Control Protocol\x1eppp.protocol\x1f32829\x1fMulti-Link Control "
    "Protocol\x1eppp.protocol\x1f32831\x1fNETBIOS Framing Control Protocol\x1eppp.protocol\x1f32833\x1f"
    "Cisco Systems Control Protocol\x1eppp.protocol\x1f32835\x1fAscom Timeplex\x1eppp.protocol\x1f32837"
    "\x1fFujitsu LBLB Control Protocol\x1eppp.protocol\x1f32839\x1fDCA Remote Lan Network Control Proto"
    "col (RLNCP)\x1eppp.protocol\x1f32841\x1fSerial Data Control Protocol (PPP-SDCP)\x1eppp.protocol"
    "\x1f32843\x1fSNA over 802.2 Control Protocol\x1eppp.protocol\x1f32845\x1fSNA Control Protocol\x1ep"
    "pp.protocol\x1f32847\x1fIP6 Header Compression Control Protocol\x1eppp.protocol\x1f32849\x1fKNX Br"
    "idging Control Protocol\x1eppp.protocol\x1f32851\x1fEncryption Control Protocol\x1eppp.protocol"
    "\x1f32853\x1fIndividual Link Encryption Control Protocol\x1eppp.protocol\x1f32855\x1fIPv6 Control "
    "Protocol\x1eppp.protocol\x1f32857\x1fPPP Muxing Control Protocol\x1eppp.protocol\x1f32859\x1fVendo"
    "r-Specific Network Control Protocol (VSNCP)\x1eppp.protocol\x1f32861\x1fTRILL Network Control Prot"
    "ocol\x1eppp.protocol\x1f32879\x1fStampede Bridging Control Protocol\x1eppp.protocol\x1f32883\x1fMP"
    "+ Control Protocol\x1eppp.protocol\x1f32961\x1fNTCITS IPI Control Protocol\x1eppp.protocol\x1f3301"
    "9\x1fSingle link compression in multilink control\x1eppp.protocol\x1f33021\x1fCompression Control "
    "Protocol\x1eppp.protocol\x1f33287\x1fCisco Discovery Protocol Control Protocol\x1eppp.protocol\x1f"
    "33289\x1fNetcs Twin Routing\x1eppp.protocol\x1f33291\x1fSTP - Control Protocol\x1eppp.protocol\x1f"
    "33293\x1fEDPCP - Extreme Discovery Protocol Control Protocol\x1eppp.protocol\x1f33333\x1fApple Cli"
    "ent Server Protocol Control\x1eppp.protocol\x1f33409\x1fMPLS Control Protocol\x1eppp.protocol\x1f3"
    "3413\x1fIEEE p1284.4 standard - Protocol Control\x1eppp.protocol\x1f33415\x1fETSI TETRA TNP1 Contr"
    "ol Protocol\x1eppp.protocol\x1f33417\x1fMultichannel Flow Treatment Protocol\x1eppp.protocol\x1f49"
    "185\x1fLink Control Protocol\x1eppp.protocol\x1f49187\x1fPassword Authentication Protocol\x1eppp.p"
    "rotocol\x1f49189\x1fLink Quality Report\x1eppp.protocol\x1f49191\x1fShiva Password Authentication "
    "Protocol\x1eppp.protocol\x1f49193\x1fCallback Control Protocol (CBCP)\x1eppp.protocol\x1f49195\x1f"
    "BACP Bandwidth Allocation Control Protocol\x1eppp.protocol\x1f49197\x1fBAP Bandwidth Allocation Pr"
    "otocol\x1eppp.protocol\x1f49243\x1fVendor-Specific Authentication Protocol (VSAP)\x1eppp.protocol"
    "\x1f49281\x1fContainer Control Protocol\x1eppp.protocol\x1f49699\x1fChallenge Handshake Authentica"
    "tion Protocol\x1eppp.protocol\x1f49701\x1fRSA Authentication Protocol\x1eppp.protocol\x1f49703\x1f"
    "Extensible Authentication Protocol\x1eppp.protocol\x1f49705\x1fMitsubishi Security Information Exc"
    "hange Protocol (SIEP)\x1eppp.protocol\x1f49775\x1fStampede Bridging Authorization Protocol\x1eppp."
    "protocol\x1f49793\x1fProprietary Authentication Protocol\x1eppp.protocol\x1f49795\x1fProprietary A"
    "uthentication Protocol\x1eppp.protocol\x1f50305\x1fProprietary Node ID Authentication Protocol\x1e"
    "pppoe.code\x1f0x0\x1fSession Data\x1epppoe.code\x1f0x7\x1fActive Discovery Offer (PADO)\x1epppoe.c"
    "ode\x1f0x9\x1fActive Discovery Initiation (PADI)\x1epppoe.code\x1f0xa\x1fActive Discovery Session-"
    "Grant (PADG)\x1epppoe.code\x1f0xb\x1fActive Discovery Session-Credit Resp.(PADC)\x1epppoe.code\x1f"
    "0xc\x1fActive Discovery Quality (PADQ)\x1epppoe.code\x1f0x19\x1fActive Discovery Request (PADR)"
    "\x1epppoe.code\x1f0x65\x1fActive Discovery Session-confirmation (PADS)\x1epppoe.code\x1f0xa7\x1fAc"
    "tive Discovery Terminate (PADT)\x1epppoe.code\x1f0xd3\x1fActive Discovery Message (PADM)\x1epppoe."
    "code\x1f0xd4\x1fActive Discovery Network (PADN)\x1etcp.options.mptcp.subtype\x1f0\x1fMultipath Cap"
    "able\x1etcp.options.mptcp.subtype\x1f1\x1fJoin Connection\x1etcp.options.mptcp.subtype\x1f2\x1fDat"
    "a Sequence Signal\x1etcp.options.mptcp.subtype\x1f3\x1fAdd Address\x1etcp.options.mptcp.subtype"
    "\x1f4\x1fRemove Address\x1etcp.options.mptcp.subtype\x1f5\x1fChange Subflow Priority\x1etcp.option"
    "s.mptcp.subtype\x1f6\x1fTCP Fallback\x1etcp.options.mptcp.subtype\x1f7\x1fFast Close\x1etcp.option"
    "s.mptcp.subtype\x1f8\x1fTCP Reset\x1etcp.options.mptcp.rst_reason\x1f0x0\x1fUnspecified error\x1et"
    "cp.options.mptcp.rst_reason\x1f0x1\x1fMPTCP-specific error\x1etcp.options.mptcp.rst_reason\x1f0x2"
    "\x1fLack of resources\x1etcp.options.mptcp.rst_reason\x1f0x3\x1fAdministratively prohibited\x1etcp"
    ".options.mptcp.rst_reason\x1f0x4\x1fToo much outstanding data\x1etcp.options.mptcp.rst_reason\x1f0"
    "x5\x1fUnacceptable performance\x1etcp.options.mptcp.rst_reason\x1f0x6\x1fMiddlebox interference"
    "\x1evlan.priority\x1f0\x1fBest Effort (default)\x1evlan.priority\x1f1\x1fBackground\x1evlan.priori"
    "ty\x1f2\x1fSpare\x1evlan.priority\x1f3\x1fExcellent Effort\x1evlan.priority\x1f4\x1fControlled Loa"
    "d\x1evlan.priority\x1f5\x1fVideo, < 100ms latency and jitter\x1evlan.priority\x1f6\x1fVoice, < 10m"
    "s latency and jitter\x1evlan.priority\x1f7\x1fNetwork Control\x1evlan.priority\x1f0\x1fBest Effort"
    " (default)\x1evlan.priority\x1f1\x1fBackground\x1evlan.priority\x1f2\x1fExcellent Effort\x1evlan.p"
    "riority\x1f3\x1fCritical Applications\x1evlan.priority\x1f4\x1fVideo, < 100ms latency and jitter"
    "\x1evlan.priority\x1f5\x1fVoice, < 10ms latency and jitter\x1evlan.priority\x1f6\x1fInternetwork C"
    "ontrol\x1evlan.priority\x1f7\x1fNetwork Control\x1evlan.priority\x1f0\x1fBest Effort (default)\x1e"
    "vlan.priority\x1f1\x1fBackground\x1evlan.priority\x1f2\x1fExcellent Effort\x1evlan.priority\x1f3"
    "\x1fCritical Applications\x1evlan.priority\x1f4\x1fVoice, < 10ms latency and jitter, Drop Eligible"
    "\x1evlan.priority\x1f5\x1fVoice, < 10ms latency and jitter\x1evlan.priority\x1f6\x1fInternetwork C"
    "ontrol\x1evlan.priority\x1f7\x1fNetwork Control\x1evlan.priority\x1f0\x1fBest Effort (default)\x1e"
    "vlan.priority\x1f1\x1fBackground\x1evlan.priority\x1f2\x1fCritical Applications, Drop Eligible\x1e"
    "vlan.priority\x1f3\x1fCritical Applications\x1evlan.priority\x1f4\x1fVoice, < 10ms latency and jit"
    "ter, Drop Eligible\x1evlan.priority\x1f5\x1fVoice, < 10ms latency and jitter\x1evlan.priority\x1f6"
    "\x1fInternetwork Control\x1evlan.priority\x1f7\x1fNetwork Control\x1evlan.priority\x1f0\x1fBest Ef"
    "fort (default), Drop Eligible\x1evlan.priority\x1f1\x1fBest Effort (default)\x1evlan.priority\x1f2"
    "\x1fCritical Applications, Drop Eligible\x1evlan.priority\x1f3\x1fCritical Applications\x1evlan.pr"
    "iority\x1f4\x1fVoice, < 10ms latency and jitter, Drop Eligible\x1evlan.priority\x1f5\x1fVoice, < 1"
    "0ms latency and jitter\x1evlan.priority\x1f6\x1fInternetwork Control\x1evlan.priority\x1f7\x1fNetw"
    "ork Control\x1evlan.etype\x1f0x800\x1fIPv4\x1evlan.etype\x1f0x86dd\x1fIPv6\x1evlan.etype\x1f0x8100"
    "\x1f802.1Q Virtual LAN\x1evlan.etype\x1f0x8102\x1fSimple Loop Protection Protocol\x1evlan.etype"
    "\x1f0x8103\x1fVirtual LACP\x1evlan.etype\x1f0x8104\x1fSimple Loop Protection Protocol (old)\x1evla"
    "n.etype\x1f0x806\x1fARP\x1evlan.etype\x1f0x872d\x1fCisco Wireless Lan Context Control Protocol\x1e"
    "vlan.etype\x1f0x8783\x1fMotorola Media Independent Network Transport\x1evlan.etype\x1f0x2452\x1fIE"
    "EE 802.11 (Centrino promiscuous)\x1evlan.etype\x1f0x600\x1fXNS Internet Datagram Protocol\x1evlan."
    "etype\x1f0x805\x1fX.25 Layer 3\x1evlan.etype\x1f0x842\x1fWake on LAN\x1evlan.etype\x1f0x8f0\x1fWiM"
    "ax Mac-to-Mac\x1evlan.etype\x1f0x3e3f\x1fEPL_V1\x1evlan.etype\x1f0x8035\x1fRARP\x1evlan.etype\x1f0"
    "x8038\x1fDEC LanBridge\x1evlan.etype\x1f0x809b\x1fAppleTalk LLAP bridging\x1evlan.etype\x1f0x80d5"
    "\x1fSNA-over-Ethernet\x1evlan.etype\x1f0x80e1\x1fEtherNet/IP Device Level Ring\x1evlan.etype\x1f0x"
    "80f3\x1fAARP\x1evlan.etype\x1f0x8137\x1fNetware IPX/SPX\x1evlan.etype\x1f0xbad\x1fVines IP\x1evlan"
    ".etype\x1f0xbaf\x1fVines Echo\x1evlan.etype\x1f0x1984\x1fNetmon Train\x1evlan.etype\x1f0x9000\x1fL"
    "oopback\x1evlan.etype\x1f0x885a\x1fFoundry proprietary\x1evlan.etype\x1f0x80ff\x1fWellfleet Compre"
    "ssion Protocol\x1evlan.etype\x1f0x8181\x1fSpanning Tree Protocol\x1evlan.etype\x1f0x81fd\x1fCablet"
    "ron Interswitch Message Protocol\x1evlan.etype\x1f0x81ff\x1fCabletron SFVLAN 1.8 Tag-Based Flood"
    "\x1evlan.etype\x1f0x8204\x1fQNX 6 QNET protocol\x1evlan.etype\x1f0x8863\x1fPPPoE Discovery\x1evlan"
    ".etype\x1f0x8864\x1fPPPoE Session\x1evlan.etype\x1f0x886c\x1fHomePNA, wlan link local tunnel\x1evl"
    "an.etype\x1f0x886d\x1fIntel ANS probe\x1evlan.etype\x1f0x886f\x1fMS NLB heartbeat\x1evlan.etype"
    "\x1f0x8870\x1fJumbo LLC\x1evlan.etype\x1f0x8874\x1fBroadcom tag\x1evlan.etype\x1f0x887b\x1fHomeplu"
    "g\x1evlan.etype\x1f0x88e1\x1fHomeplug AV\x1evlan.etype\x1f0x88e3\x1fMRP\x1evlan.etype\x1f0x88a8"
    "\x1f802.1ad Provider Bridge (Q-in-Q)\x1evlan.etype\x1f0x88e5\x1f802.1AE (MACsec)\x1evlan.etype\x1f"
    "0x893a\x1f1905.1a Convergent Digital Home Network for Heterogenous Technologies\x1evlan.etype\x1f0"
    "x88e7\x1f802.1ah Provider Backbone Bridge (mac-in-mac)\x1evlan.etype\x1f0x893f\x1f802.1br Bridge P"
    "ort Extension E-Tag\x1evlan.etype\x1f0x888e\x1f802.1X Authentication\x1evlan.etype\x1f0x88c7\x1f80"
    "2.11i Pre-Authentication\x1evlan.etype\x1f0x8847\x1fMPLS label switched packet\x1evlan.etype\x1f0x"
    "8848\x1fMPLS multicast label switched packet\x1evlan.etype\x1f0x3c07\x1f3Com NBP Datagram\x1evlan."
    "etype\x1f0x6000\x1fDEC proto\x1evlan.etype\x1f0x6001\x1fDEC DNA Dump/Load\x1evlan.etype\x1f0x6002"
    "\x1fDEC DNA Remote Console\x1evlan.etype\x1f0x6003\x1fDEC DNA Routing\x1evlan.etype\x1f0x6004\x1fD"
    "EC LAT\x1evlan.etype\x1f0x6005\x1fDEC Diagnostics\x1evlan.etype\x1f0x6006\x1fDEC Customer use\x1ev"
    "lan.etype\x1f0x6007\x1fDEC LAVC/SCA\x1evlan.etype\x1f0x8041\x1fDEC LAST\x1evlan.etype\x1f0x6558"
    "\x1fTransparent Ethernet bridging\x1evlan.etype\x1f0x2001\x1fCisco Group Management Protocol\x1evl"
    "an.etype\x1f0x22e5\x1fGigamon Header\x1evlan.etype\x1f0x22ea\x1f802.1Qat Multiple Stream Reservati"
    "on Protocol\x1evlan.etype\x1f0x88f6\x1f802.1ak Multiple Mac Registration Protocol\x1evlan.etype"
    "\x1f0x894f\x1fNetwork Service Header\x1evlan.etype\x1f0x8988\x1fPA HB Backup\x1evlan.etype\x1f0x22"
    "f0\x1fIEEE 1722 Audio Video Transport Protocol\x1evlan.etype\x1f0x22f1\x1fRobust Header Compressio"
    "n(RoHC)\x1evlan.etype\x1f0x22f3\x1fTransparent Interconnection of Lots of Links\x1evlan.etype\x1f0"
    "x22f4\x1fIntermediate System to Intermediate System\x1evlan.etype\x1f0x8808\x1fMAC Control\x1evlan"
    ".etype\x1f0x8809\x1fSlow Protocols\x1evlan.etype\x1f0x9021\x1fReal-Time Media Access Control\x1evl"
    "an.etype\x1f0x9022\x1fReal-Time Configuration Protocol\x1evlan.etype\x1f0x8881\x1fCDMA2000 A10 Uns"
    "tructured byte stream\x1evlan.etype\x1f0x8884\x1fATM over Ethernet\x1evlan.etype\x1f0x8892\x1fPROF"
    "INET\x1evlan.etype\x1f0x8899\x1fRealtek Layer 2 Protocols\x1evlan.etype\x1f0x88a2\x1fATA over Ethe"
    "rnet\x1evlan.etype\x1f0x88a4\x1fEtherCAT frame\x1evlan.etype\x1f0x88a1\x1fTelkonet powerline\x1evl"
    "an.etype\x1f0x88ab\x1fETHERNET Powerlink v2\x1evlan.etype\x1f0x88ad\x1fXiMeta Technology\x1evlan.e"
    "type\x1f0x889b\x1fCSM_ENCAPS Protocol\x1evlan.etype\x1f0x88b5\x1fLocal Experimental Ethertype 1"
    "\x1evlan.etype\x1f0x88b6\x1fLocal Experimental Ethertype 2\x1evlan.etype\x1f0x88b7\x1fIEEE 802a OU"
    "I Extended Ethertype\x1evlan.etype\x1f0x88b8\x1fIEC 61850/GOOSE\x1evlan.etype\x1f0x88b9\x1fIEC 618"
    "50/GSE management services\x1evlan.etype\x1f0x88ba\x1fIEC 61850/SV (Sampled Value Transmission\x1e"
    "vlan.etype\x1f0x88ca\x1fTransparent Inter Process Communication\x1evlan.etype\x1f0x88cc\x1f802.1 L"
    "ink Layer Discovery Protocol (LLDP)\x1evlan.etype\x1f0x88d2\x1fCDMA2000 A10 3GPP2 Packet\x1evlan.e"
    "type\x1f0x891d\x1fTTEthernet Protocol Control Frame\x1evlan.etype\x1f0x88d8\x1fCircuit Emulation S"
    "ervices over Ethernet (MEF8)\x1evlan.etype\x1f0x88d9\x1fLink Layer Topology Discovery (LLTD)\x1evl"
    "an.etype\x1f0x88dc\x1f(WAVE) Short Message Protocol (WSM)\x1evlan.etype\x1f0x88de\x1fVMware Lab Ma"
    "nager\x1evlan.etype\x1f0x8819\x1fCirrus Cobranet Packet\x1evlan.etype\x1f0x8133\x1fJuniper Netscre"
    "en Redundant Protocol\x1evlan.etype\x1f0x9104\x1fEERO Broadcast Packet\x1evlan.etype\x1f0x8021\x1f"
    "PPP IP Control Protocol\x1evlan.etype\x1f0xc021\x1fPPP Link Control Protocol\x1evlan.etype\x1f0xc0"
    "23\x1fPPP Password Authentication Protocol\x1evlan.etype\x1f0x80fd\x1fPPP Compression Control Prot"
    "ocol\x1evlan.etype\x1f0xcafe\x1fVeritas Low Latency Transport (not officially registered)\x1evlan."
    "etype\x1f0x8902\x1fIEEE 802.1ag Connectivity Fault Management (CFM) protocol\x1evlan.etype\x1f0x89"
    "03\x1fData Center Ethernet (DCE) protocol(Cisco)\x1evlan.etype\x1f0x8906\x1fFibre Channel over Eth"
    "ernet\x1evlan.etype\x1f0x890d\x1fIEEE 802.11 data encapsulation\x1evlan.etype\x1f0x8911\x1fLINX IP"
    "C Protocol\x1evlan.etype\x1f0x8914\x1fFCoE Initialization Protocol\x1evlan.etype\x1f0x8917\x1fMedi"
    "a Independent Handover Protocol\x1evlan.etype\x1f0x88ee\x1fEthernet Local Management Interface (ME"
    "F16)\x1evlan.etype\x1f0x88f7\x1fPTPv2 over Ethernet (IEEE1588)\x1evlan.etype\x1f0x88f8\x1fNetwork "
    "Controller Sideband Interface\x1evlan.etype\x1f0x88fb\x1fParallel Redundancy Protocol (PRP) and HS"
    "R Supervision (IEC62439 Part 3)\x1evlan.etype\x1f0x8901\x1fFlow Layer Internal Protocol\x1evlan.et"
    "ype\x1f0x8915\x1fRDMA over Converged Ethernet\x1evlan.etype\x1f0xd00d\x1fDigium TDM over Ethernet "
    "Protocol\x1evlan.etype\x1f0x88b4\x1fWAI Authentication Protocol\x1evlan.etype\x1f0x8926\x1fVN-Tag"
    "\x1evlan.etype\x1f0x892b\x1fSchweitzer Engineering Labs Layer 2 Protocol\x1evlan.etype\x1f0x892f"
    "\x1fHigh-availability Seamless Redundancy (IEC62439 Part 3)\x1evlan.etype\x1f0x8ff\x1fAX.25\x1evla"
    "n.etype\x1f0x8909\x1fCiscoMetaData\x1evlan.etype\x1f0x8947\x1fGeoNetworking\x1evlan.etype\x1f0xc0d"
    "e\x1feXpressive Internet Protocol\x1evlan.etype\x1f0xc0df\x1fNeighborhood Watch Protocol\x1evlan.e"
    "type\x1f0x892d\x1fbluecom Protocol\x1evlan.etype\x1f0x9100\x1fQinQ: old non-standard 802.1ad\x1evl"
    "an.etype\x1f0x99fe\x1fTechnically Enhanced Capture Module Protocol (TECMP)\x1evlan.etype\x1f0xa0ed"
    "\x1f6LoWPAN\x1evlan.etype\x1f0xd28b\x1fArista Timestamp\x1evlan.etype\x1f0xaefe\x1feCPRI\x1evlan.e"
    "type\x1f0xb4e3\x1fCableLabs Layer-3 Protocol\x1evlan.etype\x1f0xe555\x1fEXos internal Extra Header"
    "\x1evlan.etype\x1f0xfff2\x1fCisco ACI ARP gleaning\x1evlan.etype\x1f0xf1c1\x1f802.1CB Frame Replic"
    "ation and Elimination for Reliability"
)


def _values() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for entry in "".join(_VALUES).split("\x1e"):
        field, value, name = entry.split("\x1f")
        out.setdefault(field, {}).setdefault(name.lower(), int(value, 0))
    return out


#: integer field -> {value string, lower case: its first value}
VALUES: dict[str, dict[str, int]] = _values()
