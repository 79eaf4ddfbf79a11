"""Counters and a rolling latency window: what ``GET /_proxy/metrics`` reports.

    >>> totals = Totals(window=10)
    >>> totals.finished(status=200, seconds=0.004, now=100.0)
    >>> totals.snapshot(now=100.5)["p95_ms"]
    4.0

Counters only ever grow, so a reader (chaos tool, autoscaler, report) gets
rates from two snapshots; the window gives the recent request rate and
latency percentiles directly, for readers that poll only once.
"""
import math
import time
from collections import deque
from dataclasses import dataclass, field


def percentile(ordered, fraction):
    """Nearest-rank percentile of an already sorted list, or None when it is empty."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Counters:
    """Per backend. ``requests`` counts tries sent to it, ``retries`` the tries it got
    after another backend failed, ``failures`` its tries that ended without a response head."""

    requests: int = 0
    failures: int = 0
    retries: int = 0
    in_flight: int = 0


@dataclass
class Totals:
    """Per proxy, counted per client request (not per try)."""

    window: float = 10.0
    requests: int = 0
    in_flight: int = 0
    retries: int = 0
    failures: int = 0
    unknown_outcome: int = 0
    refused: int = 0
    # PROXY_STICKY=cookie: served where the cookie pinned; pinned afresh (no or unknown cookie); pinned elsewhere.
    sticky_hits: int = 0
    sticky_pins: int = 0
    sticky_repins: int = 0
    responses: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    _clock_start: float = field(default_factory=time.monotonic)
    _recent: deque = field(default_factory=deque)

    def finished(self, status, seconds, now=None):
        now = time.monotonic() if now is None else now
        klass = f"{status // 100}xx"
        self.responses[klass] = self.responses.get(klass, 0) + 1
        self._recent.append((now, seconds))
        self._forget(now)

    def _forget(self, now):
        horizon = now - self.window
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()

    def snapshot(self, now=None):
        now = time.monotonic() if now is None else now
        self._forget(now)
        durations = sorted(seconds for _, seconds in self._recent)

        def ms(fraction):
            value = percentile(durations, fraction)
            return None if value is None else round(value * 1000, 3)

        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "retries": self.retries,
            "failures": self.failures,
            "unknown_outcome": self.unknown_outcome,
            "refused": self.refused,
            "sticky": {"hits": self.sticky_hits, "pins": self.sticky_pins, "repins": self.sticky_repins},
            "responses": dict(self.responses),
            "window_s": self.window,
            # A young proxy divides by its age, not by a window it has not lived through yet.
            "rate_rps": round(len(durations) / max(min(self.window, now - self._clock_start), 1e-3), 3),
            "p50_ms": ms(0.50),
            "p95_ms": ms(0.95),
            "p99_ms": ms(0.99),
            "uptime_s": round(time.time() - self.started, 3),
        }
