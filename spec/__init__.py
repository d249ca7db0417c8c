"""Hand-written sources of truth: option schemas (construct) and state machines (FSM DSL).

``mptcpspec regen`` generates from this folder the codecs and machines in
``mptcpspec/codec/generated/`` and the exports for other tools in ``mptcpspec/export/generated/``.
"""
