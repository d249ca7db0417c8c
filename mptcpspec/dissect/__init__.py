"""The dissect wing: the pipeline from a capture to packets and connections
(:mod:`~mptcpspec.dissect.pipeline`), the fields of ``-T fields`` and display filters
(:mod:`~mptcpspec.dissect.fields`, :mod:`~mptcpspec.dissect.filters`), the text, JSON and
fields writers, ``--follow``, and option rendering.  Imports the analysis wing and below.
"""
