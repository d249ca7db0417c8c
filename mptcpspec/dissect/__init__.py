"""The dissect wing: the pipeline from a capture to packets and connections
(:mod:`~mptcpspec.dissect.pipeline`), whole reads as the commands make them and how they ended
(:mod:`~mptcpspec.dissect.reading`, :mod:`~mptcpspec.dissect.outcome`), the fields of
``-T fields`` and display filters (:mod:`~mptcpspec.dissect.fields`, each field defined once in
the forms of :mod:`~mptcpspec.dissect.fieldgen`, the option fields in
:mod:`~mptcpspec.dissect.optionfields`; :mod:`~mptcpspec.dissect.filters`), the text, JSON and
fields writers, ``--follow``, the option list of ``options``, and option rendering.  Imports the
analysis wing and below.
"""
