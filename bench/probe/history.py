"""What a probe run saw, the history its verdict (bench/probe/verdict.py) is judged from: each write a visitor
made, acknowledged or not, and every read of it, phase by phase, each with the exchange it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bench.probe import steps
from bench.probe.exchange import Exchange


@dataclass
class Read:
    phase: str  # elsewhere, writer (when elsewhere failed), newer (an instance started after it), final
    exchange: Exchange
    verdict: str  # ok, status (not an expected one), content (expected status, wrong body), unanswered
    reason: str = ""


@dataclass
class Write:
    probe: str
    visitor: str
    exchange: Exchange
    acked: bool
    reason: str  # why it was not acknowledged
    writer: str  # the instance that answered it
    bindings: dict
    unique: str | None = None
    reads: list[Read] = field(default_factory=list)
    checked_later: bool = False  # read on an instance started after it, during the run


def answered(exchange, response, step, bindings):
    """(verdict, reason) of an answer to ``step``: ok, status or content."""
    reason = steps.judge(step, response.status_code, response.headers, response.content, bindings)
    if reason is None:
        return "ok", ""
    return ("status" if exchange.status not in step.expect else "content"), reason
