"""The report's words: the run's settings in a sentence, its conclusion in a paragraph, the categories explained.

    >>> from bench.verdict.checker import Verdict
    >>> actions = [{"action": "kill", "outcome": "ok"}] * 13 + [{"action": "term", "outcome": "ok"}] * 17
    >>> print(conclusion(Verdict(ok=46771), actions, {"kill": [0.05, 0.062, 0.07]}, retries=7))
    46,771 hits acknowledged under 30 chaos actions (17 SIGTERMs to workers, 13 SIGKILLs to workers); none lost, none duplicated, none unexpected, no number missing; a killed worker was replaced in 62 ms median (worst 70 ms); the proxy retried 7 tries on another instance: requests in flight when theirs went away.
    >>> print(conclusion(Verdict(ok=900, duplicated=[{}] * 4), [], {}, retries=None, mode="seed"))
    900 hits acknowledged with no chaos action applied; 4 duplicated. Why: seed mode increments, then reads the number back in a second step, so two requests can read the same number.

Counts are hits (``model.hit_counts``), as on the console (gaps: missing numbers).
bench.harness.report puts these in report.html; it reads the run folder, this
module only turns what was read into sentences.
"""
import statistics
from collections import Counter

from bench.chaos.vocabulary import IN_WORDS
from bench.verdict import render
from bench.verdict.checker import INVALID, VALID
from bench.verdict.model import hit_counts

MODE_CAUSES = {
    "atomic": "atomic mode applies each hit in one Lua script: increment, remember the key, append the ledger",
    "seed": "seed mode increments, then reads the number back in a second step, so two requests can read the"
            " same number",
    "local": "local mode counts in each process's memory, so two processes, or one restarted, hand out the same"
             " numbers: state in the process breaks the sixth factor",
}
RECOVERY_WORDS = {"kill": "a killed worker was replaced", "term": "a SIGTERMed worker was replaced",
                  "reload": "a reloaded instance served from new workers"}


def duration(seconds):
    """``0.062`` -> ``62 ms``; ``2.8`` -> ``2.8 s``."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def counted(count, words):
    one, many = words
    return f"{count:,} {one if count == 1 else many}"


def settings(check, run):
    """One sentence: what was run, in which mode, with which load and chaos."""
    if check:
        mode = check.get("mode", "atomic")
        wrong = " (wrong on purpose)" if mode != "atomic" else ""
        head = (f"scripts/check in {mode} mode{wrong}: {check.get('web')} web instances of {check.get('workers')}"
                f" gunicorn workers, {check.get('users')} Locust users for {check.get('duration'):g} s")
        if check.get("shape"):
            head += f" in the {check['shape']} shape"
        if check.get("hosts"):
            head += ", one network-namespace host per role"
        rate, mix, seed = check.get("chaos_rate"), check.get("chaos_mix"), check.get("seed")
    else:
        head = f"A Locust web-UI run against {run.get('host') or 'its host'}: {run.get('users')} users"
        rate, mix, seed = run.get("chaos_rate"), run.get("chaos_mix"), run.get("chaos_seed")
    chaos = f"chaos at {rate:g} action/s drawn from {mix}, seed {seed}" if rate else "no chaos"
    return f"{head}; {chaos}; run {run.get('run', '?')}."


def conclusion(verdict, actions, recoveries, retries, mode=None, proof=None):
    """The paragraph at the top of the report; ``actions`` without follow-ups, ``retries`` None when unknown;
    ``proof`` (verdict.json's) says how many chaos actions the rate asked for."""
    applied = Counter(e.get("action") for e in actions if e.get("outcome") == "ok")
    skipped = sum(1 for e in actions if str(e.get("outcome", "")).startswith("skipped"))
    if applied:
        kinds = ", ".join(counted(n, IN_WORDS.get(a, (a, a))) for a, n in applied.most_common())
        first = f"{verdict.ok:,} hits acknowledged under {sum(applied.values()):,} chaos actions ({kinds})"
    else:
        first = f"{verdict.ok:,} hits acknowledged with no chaos action applied"
    if skipped:
        first += f" and {skipped:,} skipped (nothing to act on at that moment)"
    asked = (proof or {}).get("chaos_asked")
    if asked:
        made = sum(applied.values()) + skipped
        first += f", of about {asked:,.0f} the chaos rate asked for ({made / asked:.0%} kept)"
    counts = hit_counts(verdict)
    if verdict.status == VALID:
        found = "none lost, none duplicated, none unexpected, no number missing"
    elif verdict.status == INVALID:
        found = ", ".join(f"{counts[name]:,} {'numbers missing (gaps)' if name == 'gaps' else name}"
                          for name in verdict.violations)
    else:
        found = render.headline(verdict).replace("NO VERDICT: ", "no verdict, because ")
    parts = [first, found]
    for action, words in RECOVERY_WORDS.items():
        times = recoveries.get(action)
        if times:
            parts.append(f"{words} in {duration(statistics.median(times))} median (worst {duration(max(times))})")
    if retries:
        parts.append(f"the proxy retried {counted(retries, ('try', 'tries'))} on another instance: requests in"
                     " flight when theirs went away")
    elif retries == 0:
        parts.append("the proxy had nothing to retry")
    text = "; ".join(parts) + "."
    if verdict.status == INVALID and mode in MODE_CAUSES and mode != "atomic":
        text += f" Why: {MODE_CAUSES[mode]}."
    return text


def categories_explained(verdict):
    """Plain words for the categories that are not failures but need saying: recovered and not_applied."""
    counts, lines = hit_counts(verdict), []
    if counts["not_applied"]:
        lines.append(f"{counts['not_applied']:,} hits had an unknown outcome and were never applied: the client"
                     f" gave up on them, or they were {render.CUT} (in flight when the run stopped). No client was told they"
                     " succeeded, so nothing was lost; they are simply not counted.")
    if counts["recovered"]:
        lines.append(f"{counts['recovered']:,} hits had an unknown outcome at the client but were found applied,"
                     " exactly once: a try whose answer was lost had landed.")
    if counts["gaps"]:
        lines.append(f"{counts['gaps']:,} numbers in the run's range were never handed to any hit (gaps),"
                     " counted as missing numbers, as on the console.")
    return lines


def retries_of(proxy_metrics):
    """The proxy's retries during the run, from its metrics at the start and the end; None when unknown."""
    start, end = (proxy_metrics or {}).get("start"), (proxy_metrics or {}).get("end")
    try:
        return end["totals"]["retries"] - (start["totals"]["retries"] if start else 0)
    except (TypeError, KeyError):
        return None
