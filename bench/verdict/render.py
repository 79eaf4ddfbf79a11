"""The one rendering of a verdict: the console table, the JSON of verdict.json, the headline and exit status.

    print(console(source, verdict))
    write_json(path, report_json(source, verdict, chaos=summary))
    verdict = from_json(read_json(path))              # a saved verdict, as the report and benchmarks read it
    headline(verdict), LABELS[verdict.status], verdict.exit_code

Every view (console, the Locust tab, the HTML report, the harness's exit code,
benchmarks) reads a ``checker.Verdict`` through these functions, so all count
alike: gaps as missing numbers, ``kills`` never standing for other actions.
"""
from __future__ import annotations

import json
import dataclasses
from typing import Any

from bench.verdict.checker import INVALID, UNKNOWN, VALID, Verdict
from bench.verdict.sources import Source

LABELS = {VALID: "VALID", INVALID: "INVALID", UNKNOWN: "NO VERDICT"}
SHOWN = 3  # items per category on the console; the JSON report has them all


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
    if "first" in item:
        return str(item["first"]) if item["first"] == item["last"] else f"{item['first']}-{item['last']}"
    fields = ", ".join(f"{name}={value}" for name, value in item.items() if name != "reason")
    return f"{item['reason']}: {fields}" if "reason" in item else fields


def failover_lines(failovers: list[dict]) -> list[str]:
    """One line per failover of the primary (bench.verdict.failover.breakdown): its times and what it cost."""
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
    return [f"failovers ({sum(1 for row in failovers if row['fault'] != 'unexplained')}):", *lines, ""] if lines else []


def interruption(interrupted: dict) -> str:
    """One line on a run stopped before its time (bench/load/run.py's ``interrupted``)."""
    of = f" of the {interrupted['of_s']:g} s asked" if interrupted.get("of_s") else ""
    return (f"interrupted after {interrupted['after_s']:g} s{of}: {interrupted['cause']}; its users had"
            f" {interrupted['drain_s']:g} s to finish their hits, and what was made is judged")


def console(source: Source, verdict: Verdict, failovers: list[dict] = (), interrupted: dict | None = None) -> str:
    """The console table: what was read, each category's count and first items, the failovers, the verdict."""
    lines = [f"run {source.run}: {source.events:,} events from {len(source.journals)} journal(s),"
             f" ledger {source.ledger or '-'}"]
    if interrupted:
        lines.append(interruption(interrupted))
    if verdict.stats:
        lines += [*summary(verdict.stats), "", f"{'category':<12}{'count':>12}  items"]
        for name, count in verdict.counts.items():
            items = getattr(verdict, name) if name != "ok" else []
            shown = "; ".join(describe(item) for item in items[:SHOWN])
            more = f"; and {len(items) - SHOWN:,} more" if len(items) > SHOWN else ""
            lines.append(f"{name:<12}{count:>12,}  {shown}{more}".rstrip())
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


def summary(stats: dict) -> list[str]:
    """What each workload's checker read: the hit checker's line as it always was, one line per other workload."""
    lines = []
    if "applications" in stats:
        outcomes = ", ".join(f"{count:,} {kind}" for kind, count in sorted(stats["outcomes"].items()))
        lines.append(f"{stats['operations']:,} operations ({outcomes or 'none'}), {stats['applications']:,} applications,"
                     f" counter {stats['counter_start']} -> {stats['counter_end']}")
    for name, part in stats.get("workloads", {}).items():
        if name == "hits":
            continue
        counted = ", ".join(f"{value:,} {key}" for key, value in part["stats"].items() if type(value) is int)
        outcomes = ", ".join(f"{count:,} {kind}" for kind, count in part["stats"].get("outcomes", {}).items())
        lines.append(f"{name}: {LABELS[part['status']]}; {counted} ({outcomes or 'none'})")
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
