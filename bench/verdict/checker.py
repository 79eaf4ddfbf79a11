"""The consistency checker: a client history and a server ledger in, a verdict out.

The load generator journals every hit it attempts (``invoke``, then ``ok``
with the acknowledged number, ``fail``, or ``info`` when the outcome is
unknown); the web processes append a ledger entry for every increment they
apply. The checker compares the two hit by hit, in the style of Jepsen's
checkers: small pure functions, each testable on a synthetic history, no I/O.

    >>> from bench.verdict.checker import check
    >>> history = [
    ...     {"type": "invoke", "key": "r1:c1:1", "time": 1.0},
    ...     {"type": "ok", "key": "r1:c1:1", "time": 1.1, "number": 8},
    ...     {"type": "invoke", "key": "r1:c1:2", "time": 1.2},
    ...     {"type": "info", "key": "r1:c1:2", "time": 2.2},
    ... ]
    >>> ledger = [{"key": "r1:c1:1", "number": 8, "instance": "web.1", "time": 1.05}]
    >>> verdict = check(history, ledger, counter_start=7, counter_end=8)
    >>> verdict.valid, verdict.ok, verdict.not_applied
    (True, 1, [{'key': 'r1:c1:2'}])

Categories; every item is a dict naming the key(s), number(s) and a reason:

- ``ok``: acknowledged and applied with the acknowledged number (a count).
- ``lost``: acknowledged but not applied, or applied with another number.
  Also the counter moving *less* than the ledger's applications (e.g. a
  server counting in process memory), reported as one counter item.
- ``duplicated``: a key applied twice; a number given to two keys; a number
  outside the run's counter range (the shared counter hands it, or handed it,
  to another hit too); the counter moving *more* than the applications.
- ``unexpected``: applied but never attempted, or applied although the client
  recorded ``fail``.
- ``recovered`` / ``not_applied``: unknown outcome (``info``, or no completion
  at all), found applied / not applied.
- ``vanished``: never found by this checker; the session checker
  (bench/verdict/sessions.py) names a visitor's session that disappeared.
- ``gaps``: numbers missing from the run's range, as ``{"first", "last"}``
  ranges; the range is ``counter_start + 1 .. counter_end`` where those are
  known, else the smallest .. largest applied number.

Keyless hits (invoked with ``"keyless": true``: no Idempotency-Key, so no
ledger entry) are judged by their numbers and the counter: the numbers
acknowledged must be distinct and in range, and the counter must move by the
applications plus at most one for each keyless hit whose outcome is unknown.
More is ``duplicated`` (a front door re-sent one), with the ``excess``.

The verdict's type, its three statuses (valid, invalid, unknown) and the
indexes of the inputs live in ``bench.verdict.model``.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import replace
from itertools import accumulate, compress, repeat
from math import inf
from operator import and_, eq, le, not_
from typing import Any, Iterable, Mapping

from bench.verdict.model import (CATEGORIES, EXIT_CODES, INVALID, PENDING, UNKNOWN, VALID, VIOLATIONS, History,
                                 Ledger, Verdict, index_history, index_ledger, merge)

# The types live in bench.verdict.model; they are named here too, for whoever checks a run.
__all__ = ["CATEGORIES", "EXIT_CODES", "INVALID", "PENDING", "UNKNOWN", "VALID", "VIOLATIONS", "History", "Ledger",
           "Verdict", "check", "check_acknowledged", "counted_ok", "judge", "check_counter", "check_keyless", "check_numbers",
           "check_outcomes", "find_gaps", "index_history", "index_ledger", "merge"]


def _applied_item(ledger: Ledger, key: str, reason: str, **fields: Any) -> dict:
    applications = ledger.applications_of(key)
    return {
        "reason": reason,
        "key": key,
        **fields,
        "numbers": [number for number, _ in applications],
        "instances": [instance for _, instance in applications],
    }


def check_outcomes(history: History, ledger: Ledger) -> Verdict:
    """Judge each attempted hit by its outcome, and each applied key nobody attempted."""
    verdict = Verdict()
    applied, keyless, numbers = ledger.applied, history.keyless, history.number
    firsts = list(map(applied.get, history.keys))  # the number each key was first applied with, or None
    # The common case, acknowledged and applied with that number, found and counted in C.
    fine = list(map(and_, map(eq, history.status, repeat("ok")), map(eq, numbers, firsts)))
    verdict.ok = fine.count(True) - sum(fine[row] for row in keyless)
    for row in compress(range(len(fine)), map(not_, fine)):
        if row in keyless:
            continue  # judged by check_keyless and check_counter
        key, status, first = history.keys[row], history.status[row], firsts[row]
        if status == "ok":
            number = numbers[row]
            if first is None:
                verdict.lost.append(
                    _applied_item(ledger, key, "acknowledged but not applied", acknowledged=number))
            elif number in (n for n, _ in ledger.applications_of(key)):
                verdict.ok += 1
            else:
                verdict.lost.append(_applied_item(
                    ledger, key, "applied with another number than acknowledged", acknowledged=number))
        elif first is None:
            if status != "fail":
                verdict.not_applied.append({"key": key})
        elif status == "fail":
            verdict.unexpected.append(_applied_item(ledger, key, "applied although the client recorded fail"))
        else:
            verdict.recovered.append({"key": key, "number": first, "instance": ledger.instance[key]})
    if len(applied) > len(firsts) - firsts.count(None):  # some keys applied were never attempted
        for key in sorted(applied.keys() - history.position.keys()):
            verdict.unexpected.append(_applied_item(ledger, key, "applied but never attempted"))
    return verdict


def check_numbers(ledger: Ledger) -> Verdict:
    """Find keys applied more than once and numbers given to more than one key."""
    verdict = Verdict()
    for key, repeats in sorted(ledger.reapplied.items()):
        verdict.duplicated.append(_applied_item(ledger, key, f"key applied {1 + len(repeats)} times"))
    for number, repeats in sorted(ledger.shared.items()):
        keys = sorted({ledger.owner[number], *repeats})
        if len(keys) > 1:  # one key applied twice with one number is a reapplied key, already named
            verdict.duplicated.append(
                {"reason": f"number given to {len(keys)} keys", "number": number, "keys": keys})
    return verdict


def check_keyless(history: History) -> tuple[Verdict, dict[int, str], int]:
    """Keyless hits: the verdict on their numbers, the numbers acknowledged ({number: key}), the unknown count.

    Each unknown outcome (``info``, or none) may or may not have moved the counter; a ``fail`` did not.

    >>> history = index_history([{"type": "invoke", "key": k, "keyless": True} for k in "abc"]
    ...                         + [{"type": "ok", "key": "a", "number": 5}, {"type": "ok", "key": "b", "number": 5}])
    >>> verdict, seen, unknown = check_keyless(history)
    >>> verdict.ok, verdict.duplicated[0]["reason"], seen, unknown
    (1, 'number acknowledged to two keyless hits', {5: 'a'}, 1)
    """
    verdict, seen, unknown = Verdict(), {}, 0
    for row in history.keyless:
        key, status = history.keys[row], history.status[row]
        if status == "ok":
            number = history.number[row]
            if number in seen:
                verdict.duplicated.append({"reason": "number acknowledged to two keyless hits", "number": number,
                                           "keys": sorted((seen[number], key))})
            else:
                seen[number] = key
                verdict.ok += 1
        elif status != "fail":
            unknown += 1
    return verdict, seen, unknown


def check_counter(
    ledger: Ledger, counter_start: int | None = None, counter_end: int | None = None,
    seen: Mapping[int, str] | None = None, unknown: int = 0,
) -> Verdict:
    """Reconcile the shared counter with the ledger (and keyless hits): its delta, its range, its gaps.

    The delta must equal the number of applications (the ledger's, plus the
    keyless hits ``seen`` acknowledged), give or take the ``unknown`` keyless
    hits: above, the counter counted hits nobody applied (duplicated); below,
    applications never moved the shared counter (lost, e.g. a server counting
    in process memory). Gaps the unknown keyless hits can fill are no violation.
    """
    verdict = Verdict()
    seen = seen or {}
    applications = ledger.applications + len(seen)
    if counter_start is not None and counter_end is not None:
        delta = counter_end - counter_start
        if not applications <= delta <= applications + unknown:
            item = {
                "reason": f"counter moved {delta} for {applications} applications"
                          + (f" and {unknown} keyless hits of unknown outcome" if unknown else ""),
                "counter_start": counter_start,
                "counter_end": counter_end,
                "delta": delta,
                "applications": applications,
            }
            if delta > applications:
                verdict.duplicated.append({**item, "excess": delta - applications - unknown})
            else:
                verdict.lost.append(item)
    owner = {**seen, **ledger.owner} if seen else ledger.owner
    for number, key in seen.items():
        if number in ledger.owner:
            verdict.duplicated.append(
                {"reason": "number given to 2 keys", "number": number, "keys": sorted((ledger.owner[number], key))})
    numbers = sorted(owner)
    first = counter_start + 1 if counter_start is not None else (numbers[0] if numbers else None)
    last = counter_end if counter_end is not None else (numbers[-1] if numbers else None)
    if first is None or last is None:
        return verdict
    low, high = bisect_left(numbers, first), bisect_right(numbers, last)
    for number in numbers[:low] + numbers[high:]:
        keys = sorted({owner[number], *ledger.shared.get(number, ())})
        verdict.duplicated.append(
            {"reason": "number outside the run's counter range", "number": number, "keys": keys})
    gaps = find_gaps(numbers[low:high], first, last)
    if sum(b - a + 1 for a, b in gaps) > unknown:
        verdict.gaps = [{"first": a, "last": b} for a, b in gaps]
    return verdict


def find_gaps(numbers: list[int], first: int, last: int) -> list[tuple[int, int]]:
    """The inclusive ranges of ``first .. last`` missing from ``numbers``, sorted, distinct and in range."""
    gaps = []
    expected = first
    for number in numbers:
        if number > expected:
            gaps.append((expected, number - 1))
        expected = number + 1
    if expected <= last:
        gaps.append((expected, last))
    return gaps


def check_acknowledged(history: History, ledger: Ledger, counter_end: int | None = None) -> Verdict:
    """What the clients' journal alone proves, whatever the server still remembers.

    The ledger lives in the same Redis as the counter: a Redis that forgot
    (no persistence, a failover to a replica that lagged) forgets both, so
    these checks read only acknowledgements. A number acknowledged to two keys
    (and not already named by the ledger) was handed out twice; an acknowledged
    number above the final counter was forgotten by it; a hit acknowledged a
    number no higher than one acknowledged before it began, which a counter
    that only grows never does: it went backwards.
    """
    verdict = Verdict()
    numbers, keys = history.number, history.keys
    keyed = [row for row in history.acked if row not in history.keyless] if history.keyless else history.acked
    keyed_numbers = list(map(numbers.__getitem__, keyed))
    if len(set(keyed_numbers)) < len(keyed_numbers):  # rare: only then count them
        repeated = {number for number, count in Counter(keyed_numbers).items()
                    if count > 1 and number not in ledger.shared}
        by_number: dict[int, list[str]] = {}
        for row, number in zip(keyed, keyed_numbers):
            if number in repeated:
                by_number.setdefault(number, []).append(keys[row])
        for number, holders in sorted(by_number.items()):
            verdict.duplicated.append({"reason": f"number acknowledged to {len(holders)} keys", "number": number,
                                       "keys": sorted(holders)})
    if counter_end is not None:
        for row in history.acked:
            if numbers[row] > counter_end:
                verdict.lost.append({"reason": "acknowledged number above the final counter: the counter forgot it",
                                     "key": keys[row], "acknowledged": numbers[row], "counter_end": counter_end})
    verdict.duplicated += _backwards(history)
    return verdict


def _backwards(history: History) -> list[dict]:
    """Hits acknowledged a number no higher than a hit that completed before they were invoked.

    For each hit, bisecting the completion times counts the hits completed
    before it began; the running maximum of their numbers (first reached by
    ``earlier``) is what it must beat. Rows and floats all the way, no per-hit
    object: this runs over every acknowledged hit.
    """
    numbers, invoked, acked_at = history.number, history.invoked, history.acked_at
    timed = [row for row in history.acked if invoked[row] == invoked[row] and acked_at[row] == acked_at[row]]  # not NaN
    by_completion = sorted(timed, key=acked_at.__getitem__)
    completion_times = list(map(acked_at.__getitem__, by_completion))
    highest = list(accumulate(map(numbers.__getitem__, by_completion), max))  # highest[i]: over the first i + 1
    bound = [-inf, *highest]  # bound[done]: the highest number of the first `done` completions
    dones = list(map(bisect_left, repeat(completion_times), map(invoked.__getitem__, timed)))
    behind = compress(zip(timed, dones), map(le, map(numbers.__getitem__, timed), map(bound.__getitem__, dones)))
    items = []
    for row, done in sorted(behind, key=lambda hit: invoked[hit[0]]):
        earlier = by_completion[bisect_left(highest, bound[done], 0, done)]
        items.append({"reason": "acknowledged a number no higher than one acknowledged before it began:"
                                " the counter went backwards", "key": history.keys[row], "number": numbers[row],
                      "earlier": {"key": history.keys[earlier], "number": numbers[earlier]}})
    return items


def check(
    history_events: Iterable[Mapping[str, Any]],
    ledger_entries: Iterable[Mapping[str, Any]],
    counter_start: int | None = None,
    counter_end: int | None = None,
    *,
    as_of: float | None = None,
) -> Verdict:
    """Judge one run: every check over the indexed history and ledger.

    Both inputs may be generators, read once. ``as_of`` is for a run still
    going: see ``index_history``.
    """
    return judge(index_history(history_events, as_of), index_ledger(ledger_entries), counter_start, counter_end)


def judge(history: History, ledger: Ledger, counter_start: int | None = None,
          counter_end: int | None = None) -> Verdict:
    """Every check over an indexed history and ledger: ``check`` once its inputs are indexed."""
    keyless, seen, unknown = check_keyless(history)
    verdict = merge(
        check_outcomes(history, ledger),
        check_numbers(ledger),
        keyless,
        check_counter(ledger, counter_start, counter_end, seen, unknown),
        check_acknowledged(history, ledger, counter_end),
    )
    stats = {
        "operations": len(history.keys),
        "outcomes": dict(Counter(history.status)),
        "applications": ledger.applications,
        "counter_start": counter_start,
        "counter_end": counter_end,
    }
    if history.keyless:
        stats["keyless"] = {"hits": len(history.keyless), "acknowledged": len(seen), "unknown": unknown}
    return replace(verdict, errors=verdict.errors + history.errors + ledger.errors, stats=stats)


def counted_ok(history: History, ledger: Ledger, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` the verdict's ``ok`` counts: acknowledged and applied with that number (a keyless hit:
    the first to be acknowledged its number). A hit named by a violation may be one of them.

    >>> history = index_history([{"type": "invoke", "key": "a"}, {"type": "ok", "key": "a", "number": 5}])
    >>> sorted(counted_ok(history, index_ledger([{"key": "a", "number": 5}]), ["a", "b"]))
    ['a']
    """
    _, seen, _ = check_keyless(history) if history.keyless else (None, {}, 0)
    counted = set()
    for key in keys:
        row = history.position.get(key)
        if row is None or history.status[row] != "ok":
            continue
        number = history.number[row]
        if row in history.keyless:
            if seen.get(number) == key:
                counted.add(key)
        elif number in (n for n, _ in ledger.applications_of(key)):
            counted.add(key)
    return counted
