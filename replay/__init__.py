"""Replay engine for captured MPTCP sessions (sans-IO core and raw-socket transport)."""
