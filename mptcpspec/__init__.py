"""mptcpspec: Multipath TCP from a formal spec to working tools."""

from mptcpspec.errors import DecodeError, EncodeError, MptcpspecError, SpecError

__version__ = "0.1.0"
__all__ = ["DecodeError", "EncodeError", "MptcpspecError", "SpecError", "__version__"]
