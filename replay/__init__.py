"""Replay engine for captured MPTCP sessions: a sans-IO core and a raw-socket transport.

- :mod:`~replay.plan`: what to replay, from a capture (the client's subflows, data and signals);
- :mod:`~replay.setup`: the replay's options, the live addresses, :class:`~replay.setup.ReplayError`;
- :mod:`~replay.core`: :class:`~replay.core.Replay`, the client side: packets and ``now`` in,
  packets out, built of :mod:`~replay.subflow` (one subflow, :class:`~replay.subflow.SubflowState`),
  :mod:`~replay.datalevel` (sequence space, window, DATA_ACK, connection-level retransmission),
  :mod:`~replay.handshake`, :mod:`~replay.receiving`, :mod:`~replay.sending` and
  :mod:`~replay.closing` (the generated closure machine), sharing a :mod:`~replay.connection`;
- :mod:`~replay.serving`: :class:`~replay.serving.ServerReplay`, the server side, from
  :mod:`~replay.serverplan` (what the captured server sent), with :mod:`~replay.accepting` (the
  client's SYNs answered) and the same parts; :mod:`~replay.engine`: what both sides share;
- :mod:`~replay.events`: what the replay observed and did, as typed events;
  :mod:`~replay.report`: what it did in the end; :mod:`~replay.fidelity`: what it sent against the capture;
- :mod:`~replay.run` and :mod:`~replay.transport`: the clock and the raw sockets; :mod:`~replay.fleet`:
  many connections at once, each a :class:`~replay.core.Replay`;
  :mod:`~replay.raw`: the stateless mode, like tcpreplay; :mod:`~replay.wire`: packet building.
"""
