"""The codec wing: MPTCP and TCP options from the schemas in ``spec/``.

:mod:`~mptcpspec.codec.options` is the public codec API (decode and encode one option or a
whole options area, into frozen dataclasses); :mod:`~mptcpspec.codec.crypto` derives keys,
tokens, IDSNs and HMACs and checks DSS checksums.  The codecs in ``generated/`` are written by
:mod:`~mptcpspec.codec.codegen` (with :mod:`~mptcpspec.codec.decodegen`,
:mod:`~mptcpspec.codec.encodegen` and :mod:`~mptcpspec.codec.dispatchgen`, over the per-format
:mod:`~mptcpspec.codec.layout`) from the schema vocabulary of :mod:`~mptcpspec.codec.schema`
through the typed view of :mod:`~mptcpspec.codec.ir`; :mod:`~mptcpspec.codec.reference` is
construct's interpreted parse of the same schemas, the reference the generated code is tested
against.  Imports only :mod:`mptcpspec.fsm` below it.
"""
