"""The one rendering of a verdict: the console table, the JSON of verdict.json, the headline and exit status.

    print(console(source, verdict))
    write_json(path, report_json(source, verdict, chaos=summary))
    verdict = from_json(read_json(path))              # a saved verdict, as the report and benchmarks read it
    headline(verdict), LABELS[verdict.status], verdict.exit_code

Every view (console, the Locust tab, the HTML report, the harness's exit code,
benchmarks) reads a ``checker.Verdict`` through these functions, so all count
alike: each category in hits (``model.hit_counts``: a hit named by two items
counts once, and a hit a violation names is not ok too), with its items under
it grouped by reason; gaps as "N numbers missing in K ranges"; a hit whose user
was stopped mid-request "cut at stop", in the header and the table alike; a
category only for the workloads it applies to; ``kills`` never standing for
other actions.

    >>> verdict = Verdict(ok=3, gaps=[{"first": 4, "last": 6}, {"first": 9, "last": 9}])
    >>> [(row["category"], row["hits"], row["items"]) for row in table(verdict)][-1]
    ('gaps', 4, ['4 numbers missing in 2 ranges: 4-6; 9'])
    >>> table(Verdict(ok=1))[0]
    {'category': 'ok', 'hits': 1, 'meaning': 'acknowledged and applied as acknowledged', 'items': []}
"""
from __future__ import annotations

import json
import dataclasses
from typing import Any

from bench.verdict.checker import CATEGORIES, INVALID, UNKNOWN, VALID, Verdict
from bench.verdict.model import hit_counts
from bench.verdict.sources import Source

LABELS = {VALID: "VALID", INVALID: "INVALID", UNKNOWN: "NO VERDICT"}
SHOWN = 3  # items per reason on the console; the JSON report has them all
CUT = "cut at stop"  # a hit invoked and never completed: its user was stopped mid-request (the journal's pending)
OUTCOMES = {"ok": "acknowledged", "fail": "refused", "info": "outcome unknown", "pending": CUT}
MEANING = {
    "ok": "acknowledged and applied as acknowledged",
    "lost": "acknowledged, then not applied, applied otherwise, or forgotten",
    "duplicated": "applied twice, or one number handed to two hits",
    "unexpected": "applied, though never asked for or refused",
    "vanished": "a visitor's session gone",
    "recovered": f"outcome unknown or {CUT}, found applied",
    "not_applied": f"outcome unknown or {CUT}, not applied",
    "gaps": "numbers of the run's counter range that no hit holds",
}
APPLIES = {  # the categories each workload's checker can fill
    "hits": ("lost", "duplicated", "unexpected", "recovered", "not_applied", "gaps"),
    "session": ("lost", "duplicated", "unexpected", "vanished", "recovered", "not_applied"),
    "upload": ("lost", "unexpected", "recovered", "not_applied"),
}


def with_source(source: Source, verdict: Verdict | None) -> Verdict:
    """The verdict, carrying what was wrong with its input; an empty unknown one when none could be made."""
    verdict = verdict or Verdict()
    found = source.errors or ([] if source.events else [
        f"no journal event for run {source.run!r} ({source.other_runs:,} of other runs)"])
    return dataclasses.replace(verdict, errors=found + [e for e in verdict.errors if e not in found])


def headline(verdict: Verdict) -> str:
    """``VALID``, ``INVALID: lost, gaps`` (``INVALID: session: vanished`` for other workloads) or
    ``NO VERDICT: <the first reason>``, one line."""
    if verdict.status == INVALID:
        parts = verdict.stats.get("workloads", {})
        if len(parts) > 1 or list(parts) not in ([], ["hits"]):  # which workload broke, when not only hits ran
            return "INVALID: " + "; ".join(f"{name}: {', '.join(part['violations'])}"
                                           for name, part in parts.items() if part["violations"])
        return f"INVALID: {', '.join(verdict.violations)}"
    if verdict.status == UNKNOWN:
        reasons = verdict.errors or verdict.inconclusive
        return f"NO VERDICT: {reasons[0] if reasons else 'no check was made'}"
    return LABELS[VALID]


def describe(item: dict) -> str:
    """An item in one line: a gap's range, else its fields but the reason (it heads the item's group) and the
    empty ones."""
    if "first" in item:
        return str(item["first"]) if item["first"] == item["last"] else f"{item['first']}-{item['last']}"
    return ", ".join(f"{name}={value}" for name, value in item.items() if name != "reason" and value not in ([], None))


def listed(described: list[str], shown: int, unit: str = "") -> str:
    """The first ``shown`` of them, and how many more."""
    more = f"; and {len(described) - shown:,} more{unit}" if len(described) > shown else ""
    return "; ".join(described[:shown]) + more


def categories(verdict: Verdict) -> list[str]:
    """``ok`` and the categories that apply to the workloads the verdict judged (any with an item too)."""
    ran = verdict.stats.get("workloads") or {"hits": None}
    return ["ok"] + [name for name in CATEGORIES
                     if getattr(verdict, name) or any(name in APPLIES.get(workload, ()) for workload in ran)]


def table(verdict: Verdict, shown: int = SHOWN) -> list[dict]:
    """The verdict's rows: category, hits, what it means, and its items grouped by reason (``shown`` each)."""
    counts = hit_counts(verdict)
    rows = []
    for name in categories(verdict):
        items = getattr(verdict, name) if name != "ok" else []
        if name == "gaps":
            lines = [f"{counts['gaps']:,} numbers missing in {len(items):,} range{'s' * (len(items) > 1)}: "
                     + listed(list(map(describe, items)), shown, " ranges")] if items else []
        else:
            groups: dict[str, list[str]] = {}
            for item in items:
                groups.setdefault(str(item.get("reason", "")), []).append(describe(item))
            lines = [f"{len(found):,} {reason or 'hit' + 's' * (len(found) > 1)}: {listed(found, shown)}"
                     for reason, found in groups.items()]
        rows.append({"category": name, "hits": counts[name], "meaning": MEANING[name], "items": lines})
    return rows


def failover_lines(failovers: list[dict]) -> list[str]:
    """One line per failover of the primary (bench.verdict.failover.breakdown): its times and what it cost;
    nothing when no failover happened."""
    happened = [row for row in failovers if row["fault"] != "unexplained"]
    if not happened:
        return []
    lines = []
    for row in failovers:
        if row["fault"] == "unexplained":
            lines.append(f"  no failover explains {row['lost']} lost and {row['duplicated']} duplicated")
            continue
        times = ", ".join(f"{name} {row[key]:.1f}s" for name, key in (
            ("elected", "failover_s"), ("served again", "served_again_s"), ("rejoined", "rejoined_s"))
            if row.get(key) is not None)
        lost, twice = row["lost"], row["duplicated"]
        lines.append(f"  {row['fault']:<15} {row['target'] or '-'}: {times or 'not timed'}; {len(lost)} lost"
                     f"{' (' + ', '.join(lost[:SHOWN]) + (' ...' if len(lost) > SHOWN else '') + ')' if lost else ''},"
                     f" {len(twice)} numbers handed out twice, {row['failed']} hits failed"
                     + ("; the old primary answered as a primary after the election" if row["second_primary"] else ""))
    return [f"failovers ({len(happened)}):", *lines, ""]


def interruption(interrupted: dict) -> str:
    """One line on a run stopped before its time (bench/load/run.py's ``interrupted``)."""
    of = f" of the {interrupted['of_s']:g} s asked" if interrupted.get("of_s") else ""
    return (f"interrupted after {interrupted['after_s']:g} s{of}: {interrupted['cause']}; its users had"
            f" {interrupted['drain_s']:g} s to finish their hits, and what was made is judged")


def console(source: Source, verdict: Verdict, failovers: list[dict] = (), interrupted: dict | None = None) -> str:
    """The console table: what was read, each category in hits with its items by reason, the failovers, the
    verdict."""
    lines = [f"run {source.run}: {source.events:,} events from {len(source.journals)} journal(s),"
             f" ledger {source.ledger or '-'}"]
    if interrupted:
        lines.append(interruption(interrupted))
    if verdict.stats:
        lines += [*summary(verdict.stats), "", f"{'category':<12}{'hits':>10}  meaning"]
        for row in table(verdict):
            lines.append(f"{row['category']:<12}{row['hits']:>10,}  {row['meaning']}")
            lines += [f"{'':<14}{line}" for line in row["items"]]
        lines.append("")
    lines += failover_lines(list(failovers))
    problems = [("warning", message) for message in source.warnings]
    problems += [("error", message) for message in verdict.errors]
    problems += [("inconclusive", message) for message in verdict.inconclusive]
    for kind, message in problems[:10]:
        lines.append(f"{kind}: {message}")
    if len(problems) > 10:
        lines.append(f"... and {len(problems) - 10:,} more warnings and errors in the JSON report")
    lines.append(headline(verdict))
    return "\n".join(lines)


def outcomes(counted: dict[str, int]) -> str:
    """``12 acknowledged, 2 cut at stop``: a checker's outcome counts in words (``add pending``: ``add cut at stop``)."""
    def word(kind: str) -> str:
        op, _, status = kind.rpartition(" ")
        return f"{op} {OUTCOMES.get(status, status)}".strip()
    return ", ".join(f"{count:,} {word(kind)}" for kind, count in sorted(counted.items()) if count) or "none"


def summary(stats: dict) -> list[str]:
    """What each workload's checker read: one line for the hits, one per other workload."""
    lines = []
    if "applications" in stats:
        lines.append(f"{stats['operations']:,} hit{'s' * (stats['operations'] != 1)} ({outcomes(stats['outcomes'])}),"
                     f" {stats['applications']:,}"
                     f" applications, counter {stats['counter_start']} -> {stats['counter_end']}")
    for name, part in stats.get("workloads", {}).items():
        if name == "hits":
            continue
        counted = ", ".join(f"{value:,} {key}" for key, value in part["stats"].items() if type(value) is int)
        lines.append(f"{name}: {LABELS[part['status']]}; {counted} ({outcomes(part['stats'].get('outcomes', {}))})")
    return lines


def report_json(source: Source, verdict: Verdict, **extra: Any) -> dict:
    """verdict.json: the run, what was read, the whole verdict, and whatever the caller adds (chaos...)."""
    return {"run": source.run, "source": vars(source), **verdict.to_dict(), **extra}


def from_json(data: dict | None) -> Verdict:
    """A saved verdict (verdict.json) as a Verdict; a missing one is unknown."""
    if not data:
        return Verdict(errors=["no verdict was written"])
    names = {f.name for f in dataclasses.fields(Verdict)}
    return Verdict(**{name: value for name, value in data.items() if name in names})


def write_json(path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=1)
        file.write("\n")
