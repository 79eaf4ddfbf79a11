"""One checker per workload, composed by name the way Jepsen composes its checkers.

    >>> parse("hits,session")
    ('hits', 'session')
    >>> parse("hits,carts")
    Traceback (most recent call last):
    ...
    ValueError: unknown workload 'carts': choose from hits, session, upload
    >>> workload_of({"type": "invoke", "key": "r1:c:1"}), workload_of({"type": "ok", "op": "upload.get"})
    ('hits', 'upload')
    >>> verdict = check(("session",), [])
    >>> verdict.status, verdict.inconclusive, list(verdict.stats["workloads"])
    ('unknown', ['no cart add was acknowledged and then read back'], ['session'])

A hit event has no ``op``; every other event's ``op`` starts with its
workload's name (``session.add``, ``upload.get``). ``check`` splits one
journal by workload, runs each named checker on its part (the hit checker also
gets the ledger and counters), and ``compose`` makes their verdicts one, one
way whatever the workloads, as Jepsen's ``compose`` does: every item in one
list per category, ``stats["workloads"]`` holding each part's status, counts
and stats by name, and, when more than one workload ran, each item and reason
labelled with its workload's name. The hit checker's own stats stay at the
top level too, where the run's seal reads them. Events of a workload that was
not asked for make the verdict unknown. Verdicts are values: each step
returns a new one (``dataclasses.replace``).
"""
from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any, Iterable, Iterator, Mapping

from bench.verdict import checker, sessions, uploads
from bench.verdict.model import subjects

WORKLOADS = ("hits", "session", "upload")
CHECKERS = {"session": sessions.check, "upload": uploads.check}


def parse(text: str) -> tuple[str, ...]:
    """The workload names of ``hits,session``, in that order; ValueError naming the choices otherwise."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    for name in names:
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r}: choose from {', '.join(WORKLOADS)}")
    if not names:
        raise ValueError(f"name at least one workload: {', '.join(WORKLOADS)}")
    return names


def workload_of(event: Mapping[str, Any]) -> str:
    op = event.get("op")
    return op.partition(".")[0] if isinstance(op, str) else "hits"


def check(
    workloads: Iterable[str],
    events: Iterable[Mapping[str, Any]],
    ledger: Iterable[Mapping[str, Any]] = (),
    counter_start: int | None = None,
    counter_end: int | None = None,
    *,
    as_of: float | None = None,
) -> checker.Verdict:
    """The composed verdict of the named workloads over one journal."""
    workloads = tuple(workloads)
    parts: dict[str, list] = {name: [] for name in workloads if name != "hits"}
    strays: dict[str, int] = {}
    wanted = "hits" in workloads

    def hit_events() -> Iterator[Mapping[str, Any]]:
        """The hits, streamed to their checker rather than held: a million of them take a GB as dicts."""
        for event in events:
            name = workload_of(event) if "op" in event else "hits"
            if name == "hits" and wanted:
                yield event
            elif name in parts:
                parts[name].append(event)
            else:
                strays[name] = strays.get(name, 0) + 1

    if wanted:
        hits = judge_hits(hit_events(), ledger, counter_start, counter_end, as_of)
    else:
        deque(hit_events(), maxlen=0)  # it yields nothing, but routes every event
    verdicts = {name: hits if name == "hits" else CHECKERS[name](parts[name], as_of=as_of) for name in workloads}
    composed = compose(verdicts)
    strayed = [f"{count:,} events of workload {name!r}, which was not asked for" for name, count in strays.items()]
    return replace(composed, errors=composed.errors + strayed)


def judge_hits(events: Iterable[Mapping[str, Any]], ledger: Iterable[Mapping[str, Any]], counter_start: int | None,
               counter_end: int | None, as_of: float | None) -> checker.Verdict:
    """The hit checker's verdict, with how many of its ``ok`` hits a violation names (``stats["ok_named"]``,
    so no view counts a hit both ok and lost), and unknown when no hit was acknowledged."""
    history, ledger = checker.index_history(events, as_of), checker.index_ledger(ledger)
    verdict = checker.judge(history, ledger, counter_start, counter_end)
    named = {subject for category in checker.VIOLATIONS for item in getattr(verdict, category)
             for subject in subjects(item)}
    verdict = replace(verdict, stats={**verdict.stats, "ok_named": len(checker.counted_ok(history, ledger, named))})
    return verdict if verdict.ok else replace(verdict, inconclusive=verdict.inconclusive + ["no hit was acknowledged"])


def compose(verdicts: Mapping[str, checker.Verdict]) -> checker.Verdict:
    """One verdict of the workloads' verdicts, by name: their items merged (each labelled with its workload's
    name when there are several), the hit checker's stats on top, and every part's status in ``workloads``."""
    several = len(verdicts) > 1
    merged = checker.merge(*(labelled(name, verdict) if several else verdict for name, verdict in verdicts.items()))
    parts = {name: {"status": verdict.status, "violations": verdict.violations, "counts": verdict.counts,
                    "stats": verdict.stats} for name, verdict in verdicts.items()}
    return replace(merged, stats={**(verdicts["hits"].stats if "hits" in verdicts else {}), "workloads": parts})


def labelled(name: str, verdict: checker.Verdict) -> checker.Verdict:
    """The verdict with its workload's name on every item and before every reason."""
    items = {category: [{**item, "workload": item.get("workload", name)} for item in getattr(verdict, category)]
             for category in checker.CATEGORIES}
    return replace(verdict, **items, errors=[f"{name}: {reason}" for reason in verdict.errors],
                   inconclusive=[f"{name}: {reason}" for reason in verdict.inconclusive])
