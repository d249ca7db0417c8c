"""A TCP sender's loss recovery, sans IO: the retransmission timer, the congestion window, SACK.

:class:`RtoEstimator` is RFC 6298's retransmission timer: SRTT and RTTVAR from round-trip samples,
RTO = SRTT + max(G, 4 RTTVAR), bounded below by ``min_rto`` (RFC 6298 asks for 1 s; the replay
uses Linux's 200 ms) and above by 60 s, doubled on each expiry and kept doubled until
a sample from a segment sent once arrives (Karn's algorithm).

:class:`Congestion` is RFC 5681's congestion window, in octets: an initial window of ten segments
(RFC 6928, as Linux), slow start with appropriate byte counting (RFC 3465, L = 2 SMSS), congestion
avoidance, ``ssthresh = max(FlightSize / 2, 2 SMSS)`` on a loss, with ``cwnd = ssthresh`` after a
fast retransmit (RFC 6675 §5 step 4.2) and one segment after a timeout (RFC 5681 §3.1).

:func:`sack_blocks` reads the SACK blocks of a segment's TCP options (RFC 2018 §3).
"""

from __future__ import annotations

from mptcpspec.codec.options import option_spans

__all__ = [
    "DUP_THRESH",
    "GRANULARITY",
    "INITIAL_WINDOW",
    "MAX_RTO",
    "MIN_RTO",
    "PTO_EXTRA",
    "Congestion",
    "RtoEstimator",
    "sack_blocks",
]

#: the duplicate ACKs (or SACKed segments above a hole) that mean a segment was lost (RFC 5681, RFC 6675)
DUP_THRESH = 3
#: the clock's granularity G of RFC 6298 (seconds): the replay's clock is finer; this is a floor on K * RTTVAR
GRANULARITY = 0.001
#: the least RTO (seconds): Linux's 200 ms (RFC 6298 §2.4 says 1 s).  A lower floor fires spurious
#: timeouts when the replaying host is busy, and a spurious timeout moves a stalled subflow's data
#: to another: the replay's per-subflow split would then depend on the machine's load.  Most losses
#: are recovered sooner anyway, by fast retransmit, RACK and the tail loss probe.
MIN_RTO = 0.2
#: added to 2 SRTT for the tail loss probe's timeout (RFC 8985 §7.2; Linux adds 2 ms)
PTO_EXTRA = 0.002
#: the largest RTO (RFC 6298 §2.5: at least 60 s)
MAX_RTO = 60.0
#: the initial window in segments (RFC 6928)
INITIAL_WINDOW = 10

ALPHA, BETA, K = 1 / 8, 1 / 4, 4  # RFC 6298 §2.3
INFINITE = 1 << 30


class RtoEstimator:
    """RFC 6298's retransmission timeout: ``initial`` seconds until the first sample."""

    __slots__ = ("srtt", "rttvar", "rto", "min_rto", "max_rto", "granularity")

    def __init__(
        self, initial: float, min_rto: float = MIN_RTO, max_rto: float = MAX_RTO, granularity: float = GRANULARITY
    ) -> None:
        self.srtt: float | None = None  #: smoothed round-trip time (None: no sample yet)
        self.rttvar = 0.0  #: round-trip time variation
        self.rto = initial  #: the current timeout, backed off or not
        self.min_rto, self.max_rto, self.granularity = min_rto, max_rto, granularity

    def sample(self, r: float) -> None:
        """A round-trip time measured on a segment sent once (Karn): SRTT, RTTVAR and RTO anew
        (RFC 6298 §2.2, §2.3), which also ends any backing off."""
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - r)  # with the old SRTT
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * r
        self.rto = min(self.max_rto, max(self.min_rto, self.srtt + max(self.granularity, K * self.rttvar)))

    def measured(self) -> float | None:
        """The RTO the samples give, not backed off (None before the first sample)."""
        if self.srtt is None:
            return None
        return min(self.max_rto, max(self.min_rto, self.srtt + max(self.granularity, K * self.rttvar)))

    def back_off(self) -> None:
        """The timer expired: RTO = RTO * 2 (RFC 6298 §5.5), at most ``max_rto``."""
        self.rto = min(self.max_rto, self.rto * 2)


class Congestion:
    """RFC 5681's congestion window and slow-start threshold, in octets, for segments of ``smss``."""

    __slots__ = ("smss", "cwnd", "ssthresh")

    def __init__(self, smss: int) -> None:
        self.smss = smss
        self.cwnd = INITIAL_WINDOW * smss
        self.ssthresh = INFINITE  #: "arbitrarily high" at first (RFC 5681 §3.1)

    @property
    def lossy(self) -> bool:
        """A loss has set the slow-start threshold."""
        return self.ssthresh < INFINITE

    def acked(self, octets: int) -> None:
        """``octets`` newly acknowledged outside loss recovery: slow start below ``ssthresh``
        (cwnd += min(N, L), L = 2 SMSS: RFC 3465), else congestion avoidance (cwnd += SMSS * SMSS /
        cwnd per ACK, at least one octet: RFC 5681 §3.1 (3))."""
        if octets <= 0:
            return
        if self.cwnd < self.ssthresh:
            self.cwnd += min(octets, 2 * self.smss)
        else:
            self.cwnd += max(1, self.smss * self.smss // self.cwnd)

    def halve(self, flight: int) -> None:
        """A loss found by duplicate ACKs or SACK: ssthresh = cwnd = max(FlightSize / 2, 2 SMSS)
        (RFC 5681 §3.1 (4), RFC 6675 §5 step 4.2)."""
        self.ssthresh = self.cwnd = max(flight // 2, 2 * self.smss)

    def timeout(self, flight: int, again: bool) -> None:
        """The retransmission timer expired: ssthresh = max(FlightSize / 2, 2 SMSS), unless the
        segment sent on the timeout was itself lost (``again``: ssthresh is kept), and cwnd = one
        segment, the loss window (RFC 5681 §3.1)."""
        if not again:
            self.ssthresh = max(flight // 2, 2 * self.smss)
        self.cwnd = self.smss


def sack_blocks(options: bytes) -> list[tuple[int, int]]:
    """The (left edge, right edge) pairs of the SACK option in ``options`` (RFC 2018 §3), none when
    it has none or a malformed one."""
    for kind, i, size in option_spans(options):
        if kind == 5:
            if (size - 2) % 8:
                return []
            b = options
            return [
                (int.from_bytes(b[j : j + 4], "big"), int.from_bytes(b[j + 4 : j + 8], "big"))
                for j in range(i + 2, i + size, 8)
            ]
    return []
