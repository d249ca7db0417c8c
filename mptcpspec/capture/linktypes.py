"""Link-layer header types (tcpdump.org/linktypes.html): those decoded, and names for the rest.

>>> linktype_name(1)
'ETHERNET'
>>> linktype_name(147)
'USER0'
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["LINKTYPE_NAMES", "LinkType", "linktype_name"]


class LinkType(IntEnum):
    """The link-layer header types that :mod:`mptcpspec.capture.packets` decodes."""

    NULL = 0
    ETHERNET = 1
    PPP = 9  #: PPP, with or without the HDLC address and control octets
    RAW_OLD = 12  # DLT_RAW on most BSDs
    RAW_OLD2 = 14  # DLT_RAW on OpenBSD
    PPP_HDLC = 50  #: PPP in HDLC-like framing (RFC 1662), or Cisco HDLC
    PPP_ETHER = 51  #: PPPoE without its Ethernet header
    RAW = 101
    LOOP = 108
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


#: Names (tcpdump.org's LINKTYPE_ names without the prefix) of link types met in captures but not
#: decoded, so that a frame of one is named when it is counted.
LINKTYPE_NAMES: dict[int, str] = {
    3: "AX25",
    6: "IEEE802_5",
    7: "ARCNET_BSD",
    8: "SLIP",
    10: "FDDI",
    105: "IEEE802_11",
    107: "FRELAY",
    119: "IEEE802_11_PRISM",
    127: "IEEE802_11_RADIOTAP",
    138: "APPLE_IP_OVER_IEEE1394",
    139: "MTP2_WITH_PHDR",
    143: "DOCSIS",
    147: "USER0",
    148: "USER1",
    149: "USER2",
    150: "USER3",
    151: "USER4",
    152: "USER5",
    153: "USER6",
    154: "USER7",
    155: "USER8",
    156: "USER9",
    157: "USER10",
    158: "USER11",
    159: "USER12",
    160: "USER13",
    161: "USER14",
    162: "USER15",
    163: "IEEE802_11_AVS",
    187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX",
    192: "PPI",
    195: "IEEE802_15_4_WITHFCS",
    201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    215: "IEEE802_15_4_NONASK_PHY",
    220: "USB_LINUX_MMAPPED",
    227: "CAN_SOCKETCAN",
    230: "IEEE802_15_4_NOFCS",
    231: "DBUS",
    235: "DVB_CI",
    239: "NFLOG",
    240: "NETANALYZER",
    249: "USBPCAP",
    253: "NETLINK",
    254: "BLUETOOTH_LINUX_MONITOR",
    263: "IPOIB",
    274: "ETW",
    284: "FIRA_UCI",
}


def linktype_name(linktype: int) -> str:
    """The name of a link-layer header type, or ``LINKTYPE_n`` when it has none here."""
    try:
        return LinkType(linktype).name
    except ValueError:
        return LINKTYPE_NAMES.get(linktype, f"LINKTYPE_{linktype}")
