"""Hand-written sources of truth: option schemas (construct) and state machines (FSM DSL).

``mptcpspec regen`` generates ``mptcpspec/generated/`` from this folder.
"""
