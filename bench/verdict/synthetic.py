"""Synthetic clean runs, a history and a ledger that agree, for the checker's property tests and benchmark.

    >>> from bench.verdict.checker import check
    >>> run = SyntheticRun("r1", ["ok", "fail", "info-applied", "pending-not-applied"], counter_start=7, clients=2)
    >>> verdict = check(run.history(), run.ledger(), run.counter_start, run.counter_end)
    >>> verdict.status, verdict.ok, run.counter_end
    ('valid', 1, 9)

Each hit has an outcome from ``OUTCOMES``: what its client journaled (``None``
when the client died before a completion) and whether the server applied it.
The server applies hits in journal order, each hit ending before the next
begins, or in the order of ``applied`` (indices of applied hits), all hits
then overlapping in time; numbers run from ``counter_start + 1``. Both
streams are generators, so a million hits take no memory to make.
"""
from dataclasses import dataclass

from common.schema import make_key

OUTCOMES = {
    "ok": ("ok", True),
    "fail": ("fail", False),
    "info-applied": ("info", True),
    "info-not-applied": ("info", False),
    "pending-applied": (None, True),  # invoked, then the client died: no completion
    "pending-not-applied": (None, False),
}
T0 = 1.7e9


@dataclass
class SyntheticRun:
    run: str
    outcomes: list  # one name from OUTCOMES per hit, in invoke order
    counter_start: int = 0
    clients: int = 1
    applied: list | None = None  # indices of the applied hits in the order applied; default: invoke order

    def __post_init__(self):
        applied = [i for i, outcome in enumerate(self.outcomes) if OUTCOMES[outcome][1]]
        self.applications = len(applied)
        self.counter_end = self.counter_start + self.applications
        self._numbers = None
        if self.applied is not None:
            assert sorted(self.applied) == applied, "applied must order exactly the applied hits"
            self._numbers = {i: self.counter_start + 1 + n for n, i in enumerate(self.applied)}

    def key(self, i):
        return make_key(self.run, f"c{i % self.clients}", i)

    def history(self):
        """Every hit's invoke and, unless pending, its completion; ok ones carry their number."""
        number = self.counter_start
        for i, outcome in enumerate(self.outcomes):
            kind, applied = OUTCOMES[outcome]
            key, process, t = self.key(i), f"c{i % self.clients}", T0 + i / 1000
            yield {"type": "invoke", "key": key, "time": t, "process": process}
            number += applied
            if kind:
                event = {"type": kind, "key": key, "time": self._completed_at(i), "process": process}
                if kind == "ok":
                    event["number"] = self._numbers[i] if self._numbers else number
                yield event

    def _completed_at(self, i):
        # In journal order each hit ends before the next begins; in any other order of application
        # they must all overlap (every invoke before every completion), as concurrent clients do.
        return T0 + (len(self.outcomes) if self._numbers else 0) / 1000 + i / 1000 + 0.0005

    def ledger(self):
        """The server's applications, in the order applied."""
        order = self.applied if self.applied is not None else (
            i for i, outcome in enumerate(self.outcomes) if OUTCOMES[outcome][1])
        for n, i in enumerate(order):
            yield {"key": self.key(i), "number": self.counter_start + 1 + n, "instance": f"web.{i % 4 + 1}",
                   "time": T0 + i / 1000 + 0.0002}
