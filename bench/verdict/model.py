"""The checker's types: the indexed history and ledger it judges, and the Verdict it gives, with three statuses.

    history = index_history(journal_events)      # the client's ops as columns: status, number, times
    ledger = index_ledger(ledger_entries)         # the server's applications by key and by number
    verdict = merge(check_outcomes(history, ledger), ...)   # bench.verdict.checker's checks

A verdict has one of three statuses, as Jepsen's checkers do: ``invalid``
when lost, duplicated, unexpected, vanished or gaps has an item; ``unknown`` when the
input itself has ``errors`` (a key invoked twice, an ok without a number, a
journal missing...), whatever was found, since nothing found in broken input
can be trusted; ``unknown`` too when nothing is wrong but the run proved
nothing (``inconclusive`` says why: no hit acknowledged, say); else ``valid``.

    >>> Verdict(ok=1).status, Verdict(inconclusive=["no hit was acknowledged"]).status
    ('valid', 'unknown')
    >>> Verdict(lost=[{"key": "r1:c1:1"}]).status, Verdict(errors=["journal missing"]).status
    ('invalid', 'unknown')
    >>> EXIT_CODES
    {'valid': 0, 'invalid': 1, 'unknown': 2}
"""
from __future__ import annotations

import contextlib
from array import array
from dataclasses import dataclass, field
from math import nan as NAN
from typing import Any, Iterable, Mapping, MutableSequence

from bench.verdict.ops import pair

PENDING = "pending"  # the status of an op invoked but never completed
# Maps each completion type to one shared string, so a million ops hold no copies.
COMPLETIONS = {kind: kind for kind in ("ok", "fail", "info")}
CATEGORIES = ("lost", "duplicated", "unexpected", "vanished", "recovered", "not_applied", "gaps")
VIOLATIONS = ("lost", "duplicated", "unexpected", "vanished", "gaps")  # the categories that make a run invalid
VALID, INVALID, UNKNOWN = "valid", "invalid", "unknown"
EXIT_CODES = {VALID: 0, INVALID: 1, UNKNOWN: 2}


@dataclass
class History:
    """The client's ops as columns, a row an op in invoke order: ``position[key]`` is the op's row.

    Columns, not a dict entry or an object per op, so that a million ops take
    tens of MB. A status is the type of the op's completion, or ``PENDING``;
    a time is a float, NaN when the event had none (nor a number).
    """

    position: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # row -> key
    status: list[str] = field(default_factory=list)
    number: MutableSequence[int] = field(default_factory=lambda: array("q"))  # the number an ok acknowledged, else 0
    invoked: MutableSequence[float] = field(default_factory=lambda: array("d"))  # the time of its invoke
    acked_at: MutableSequence[float] = field(default_factory=lambda: array("d"))  # the time of its ok
    acked: MutableSequence[int] = field(default_factory=lambda: array("q"))  # the rows of ok ops, as they completed
    errors: list[str] = field(default_factory=list)
    keyless: dict[int, None] = field(default_factory=dict)  # the rows of ops sent without a key (an ordered set)


@dataclass
class Ledger:
    """The server's applications, indexed by key and by number.

    The first application of each key and each number is kept in dicts, the
    rare repeats aside, so the common case costs a few entries per application.
    """

    applied: dict[str, int] = field(default_factory=dict)  # key -> number
    instance: dict[str, str] = field(default_factory=dict)  # key -> instance
    owner: dict[int, str] = field(default_factory=dict)  # number -> key
    reapplied: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    shared: dict[int, list[str]] = field(default_factory=dict)
    applications: int = 0
    errors: list[str] = field(default_factory=list)

    def applications_of(self, key: str) -> list[tuple[int, str]]:
        """Every (number, instance) the key was applied with, in ledger order."""
        if key not in self.applied:
            return []
        return [(self.applied[key], self.instance[key]), *self.reapplied.get(key, ())]


@dataclass
class Verdict:
    """The checker's answer; ``to_dict()`` is its JSON form."""

    ok: int = 0
    lost: list[dict] = field(default_factory=list)
    duplicated: list[dict] = field(default_factory=list)
    unexpected: list[dict] = field(default_factory=list)
    vanished: list[dict] = field(default_factory=list)  # a visitor's session gone (bench/verdict/sessions.py)
    recovered: list[dict] = field(default_factory=list)
    not_applied: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the input is broken: no verdict can be trusted
    inconclusive: list[str] = field(default_factory=list)  # nothing wrong, but nothing proved either
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def violations(self) -> list[str]:
        """The names of the non-empty categories that make the verdict invalid."""
        return [name for name in VIOLATIONS if getattr(self, name)]

    @property
    def status(self) -> str:
        if self.errors:
            return UNKNOWN
        if self.violations:
            return INVALID
        return UNKNOWN if self.inconclusive else VALID

    @property
    def valid(self) -> bool:
        return self.status == VALID

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def counts(self) -> dict[str, int]:
        """Items per category, except gaps: the count of missing numbers, not of ranges."""
        counts = {"ok": self.ok} | {name: len(getattr(self, name)) for name in CATEGORIES}
        counts["gaps"] = sum(gap["last"] - gap["first"] + 1 for gap in self.gaps)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "violations": self.violations,
            "counts": self.counts,
            "stats": self.stats,
            "ok": self.ok,
            **{name: getattr(self, name) for name in CATEGORIES},
            "errors": self.errors,
            "inconclusive": self.inconclusive,
        }


def subjects(item: Mapping[str, Any]) -> list:
    """What an item is about: the hits it names by key, a visitor's item, an upload; none for a counter item.

    >>> subjects({"reason": "number given to 2 keys", "number": 4, "keys": ["r:a:1", "r:b:1"]})
    ['r:a:1', 'r:b:1']
    >>> subjects({"visitor": "v1", "item": "i2", "read": "r:v:3"}), subjects({"delta": 3, "applications": 5})
    ([('v1', 'i2')], [])
    """
    if "upload" in item:
        return [("upload", item["upload"])]
    if "visitor" in item:
        return [(item["visitor"], item.get("item"))]
    if "keys" in item:
        return list(item["keys"])
    return [item["key"]] if "key" in item else []


def unnamed(item: Mapping[str, Any]) -> int:
    """The hits a counter item stands for: the counter's excess, or the applications it did not count."""
    if "excess" in item:
        return max(0, item["excess"])
    if "delta" in item and "applications" in item:
        return max(0, item["applications"] - item["delta"])
    return 0


def hit_counts(verdict: Verdict) -> dict[str, int]:
    """Hits per category, each counted once however many items name it: ``ok`` without the hits a violation
    names (``stats["ok_named"]``), gaps as missing numbers. A counter item's hits (``unnamed``) may be those
    other items name: a category counts the larger. What every view shows; ``counts`` counts items.

    >>> verdict = Verdict(ok=2, lost=[{"key": "a", "reason": "not applied"}, {"key": "a", "reason": "forgot"}],
    ...                   stats={"ok_named": 1})
    >>> hit_counts(verdict)["ok"], hit_counts(verdict)["lost"], verdict.counts["lost"]
    (1, 1, 2)
    """
    counts = {"ok": verdict.ok - verdict.stats.get("ok_named", 0)}
    for name in CATEGORIES:
        items = getattr(verdict, name)
        named = {subject for item in items for subject in subjects(item)}
        alone = sum(1 for item in items if not subjects(item) and not unnamed(item))  # an item naming nothing: one
        counts[name] = max(len(named) + alone, sum(map(unnamed, items)))  # the counter's may be the hits named
    counts["gaps"] = verdict.counts["gaps"]
    return counts


def merge(*verdicts: Verdict) -> Verdict:
    """One verdict holding every item of the given ones (their stats aside)."""
    return Verdict(ok=sum(verdict.ok for verdict in verdicts),
                   **{name: [item for verdict in verdicts for item in getattr(verdict, name)]
                      for name in (*CATEGORIES, "errors", "inconclusive")})


def index_history(events: Iterable[Mapping[str, Any]], as_of: float | None = None) -> History:
    """Index journal events by key, whatever their order across journals.

    With ``as_of`` (the time the ledger was read), later completions are
    ignored: those ops were still in flight for a ledger read at that time.

    >>> history = index_history([{"type": "invoke", "key": "r1:c1:1", "time": 1.0}, {"type": "invoke", "key": "r1:c1:2"},
    ...                          {"type": "ok", "key": "r1:c1:2", "time": 1.5, "number": 8}])
    >>> row = history.position["r1:c1:2"]
    >>> row, history.status[row], history.number[row], history.invoked[row], history.acked_at[row], list(history.acked)
    (1, 'ok', 8, nan, 1.5, [1])
    """
    history = History()
    status, number, invoked, acked_at, acked = (
        history.status, history.number, history.invoked, history.acked_at, history.acked)

    def invoke(event: Mapping[str, Any]) -> None:
        if event.get("keyless"):
            history.keyless[len(status)] = None
        status.append(PENDING)
        time = event.get("time")
        invoked.append(time if type(time) is float else _seconds(time))
        acked_at.append(NAN)
        number.append(0)

    def complete(row: int, event: Mapping[str, Any]) -> None:
        nonlocal number
        kind = status[row] = COMPLETIONS[event["type"]]
        if kind == "ok":
            time = event.get("time")
            acked_at[row] = time if type(time) is float else _seconds(time)
            acked.append(row)
            try:
                number[row] = event["number"]
            except OverflowError:  # beyond 64 bits: a column of Python ints from now on
                number = history.number = list(number)
                number[row] = event["number"]

    history.position, history.errors = pair(events, invoke, complete, as_of, numbered="ok")
    history.keys = list(history.position)
    return history


def _seconds(time: Any) -> float:
    """A journal time as a float; NaN, no time, when it is no number or too large for a float."""
    if isinstance(time, (int, float)):
        with contextlib.suppress(OverflowError):
            return float(time)
    return NAN


def index_ledger(entries: Iterable[Mapping[str, Any]]) -> Ledger:
    """Index ledger entries by key and by number, keeping every repeat."""
    ledger = Ledger()
    applied, first_instance, owner = ledger.applied, ledger.instance, ledger.owner
    reapplied, shared = ledger.reapplied, ledger.shared
    instances: dict[str, str] = {}  # one string per instance name, not one per entry
    applications = 0
    for entry in entries:
        key = entry.get("key")
        number = entry.get("number")
        if type(key) is not str or type(number) is not int:
            ledger.errors.append(f"ledger entry without a string key and an integer number: {entry!r}")
            continue
        instance = str(entry.get("instance"))
        instance = instances.setdefault(instance, instance)
        applications += 1
        if key in applied:
            reapplied.setdefault(key, []).append((number, instance))
        else:
            applied[key] = number
            first_instance[key] = instance
        if number in owner:
            shared.setdefault(number, []).append(key)
        else:
            owner[number] = key
    ledger.applications = applications
    return ledger
