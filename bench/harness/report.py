"""The HTML report of one check: the story in words, the verdict, a timeline with every chaos event, recovery.

    $ python -m bench.harness.report reports/20261129-193000-atomic   # writes report.html there

It opens with the settings in a sentence and the conclusion in a paragraph
(bench.harness.story), then the verdict's categories, with the ones that are
not failures explained and, for a wrong-on-purpose mode, the cause; under
``--redis sentinel``, a row per failover of the primary. It reads
only what a run left in its folder: verdict.json, run.json, check.json (runs of
scripts/check), proxy_metrics.json, chaos.jsonl, formation.jsonl,
autoscale.jsonl (with ``--autoscale``) and Locust's locust_stats_history.csv,
so a report can be rebuilt at any time after the run.
"""
import base64
import csv
import html
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

from bench.chaos.vocabulary import IN_WORDS, is_action
from bench.harness import story
from bench.harness.outages import outage_costs
from bench.harness.timeline import timeline_png
from bench.runfolder import (AUTOSCALE, CHAOS, CHECK, FORMATION, HISTORY, JOURNAL, LOCUST_HTML, PROXY_METRICS,
                             REPORT_HTML, RUN, VERDICT_JSON, read_json, read_jsonl)
from bench.verdict import render
from bench.verdict.checker import VALID
from common.clock import clock


def read_history(path):
    """Per-second rows of Locust's stats history: {name: [(time, rps, failures/s, p99 ms, p95 ms, users)]}.

    The percentiles are Locust's "current" ones, over its last 10 s."""
    series = {}

    def ms(text):
        return float(text) if text not in ("N/A", "", None) else None

    try:
        with open(path, newline="") as file:
            for row in csv.DictReader(file):
                series.setdefault(row["Name"], []).append((
                    float(row["Timestamp"]), float(row["Requests/s"]), float(row["Failures/s"]),
                    ms(row.get("99%")), ms(row.get("95%")), int(row.get("User Count") or 0),
                ))
    except OSError:
        pass
    return series


def recovery_times(chaos_events):
    """{action: [seconds from the signal to a replacement worker serving]}, from the monkey's follow-ups."""
    times = {}
    for event in chaos_events:
        if "recovery_s" in event:
            times.setdefault(event.get("after"), []).append(event["recovery_s"])
    return times


def actions_of(chaos_events):
    """The actions themselves, without their follow-ups (recovery, thaw)."""
    return [e for e in chaos_events if is_action(e)]


def scaling_of(autoscale_events):
    """The autoscaler's start and each change, without its holds."""
    return [e for e in autoscale_events if e.get("action") in ("start", "up", "down")]


def table(headers, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def verdict_section(verdict, run_id, mode=None, interrupted=None):
    """The headline, then each category in hits, what it means, and its items by reason (render.table)."""
    rows = [(row["category"], f"{row['hits']:,}", row["meaning"], "\n".join(row["items"]))
            for row in render.table(verdict, shown=5)]
    reasons = "".join(f"<p class=bad>{html.escape(reason)}</p>" for reason in verdict.errors + verdict.inconclusive)
    explained = "".join(f"<p>{html.escape(line)}</p>" for line in story.categories_explained(verdict))
    cause = (f"<p class=cause>Wrong on purpose: {html.escape(story.MODE_CAUSES[mode])}.</p>"
             if mode in story.MODE_CAUSES and mode != "atomic" else "")
    return (f"<h2 class={'good' if verdict.status == VALID else 'bad'}>{html.escape(render.headline(verdict))}</h2>"
            f"<p>run <code>{html.escape(str(run_id))}</code></p>" + cause
            + (f"<p class=bad>{html.escape(render.interruption(interrupted))}</p>" if interrupted else "")
            + table(("category", "hits", "meaning", "items, by reason"), rows) + reasons + explained)


def scaling_section(scaling):
    if not scaling:
        return ""
    return "<h2>Autoscaling</h2>" + table(("time", "decision", "instances", "why"), [
        (clock(e["time"]), e["action"], f"{e['previous']} → {e['desired']}" if "previous" in e else e["desired"],
         e.get("reason", "")) for e in scaling])


def recovery_section(recoveries):
    if not recoveries:
        return "<p>No recovery was measured in this run.</p>"
    return table(("after", "measured", "median s", "worst s"), [
        (action, len(times), f"{statistics.median(times):.3f}", f"{max(times):.3f}")
        for action, times in sorted(recoveries.items())]) + ("<p>From the signal to a replacement worker serving; after a"
                                                         " redis-* action, from the server answering again to the"
                                                         " first hit served through the proxy.</p>")


def outage_section(rows):
    """Per backing-service outage (bench/harness/outages.py): how long, recovery, what it cost the clients."""
    if not rows:
        return ""
    def seconds(row, end):
        return f"{row[end] - row['began']:.3f}" if row[end] else "-"
    return "<h2>Backing-service outages</h2>" + table(
        ("time", "action", "down s", "recovery s", "hits delayed", "tries refused", "failed after retries",
         "acknowledged hits lost"),
        [(clock(r["began"]), r["action"], seconds(r, "ended"), r["recovery_s"] if r["recovery_s"] is not None else "-",
          r["hits_delayed"], r["tries_refused"], r["hits_failed"], r["hits_lost"]) for r in rows]) + (
        "<p>Down: from the signal to the server answering again; recovery: from then to the first hit served through"
        " the proxy. A lost hit counts against the first outage to end after it was acknowledged.</p>")


def listed(items):
    """How many, and the first few (render.SHOWN, as on the console)."""
    shown = ", ".join(map(str, items[:render.SHOWN])) + (" ..." if len(items) > render.SHOWN else "")
    return f"{len(items)} ({shown})" if items else "0"


def failover_section(rows, chaos_events):
    """Per failover (verdict.json's ``failovers``, bench/verdict/failover.py), its new primary from the chaos event;
    nothing when no failover happened (a run without Sentinel)."""
    if not any(row["fault"] != "unexplained" for row in rows or ()):
        return ""
    events = {e["began"]: e for e in chaos_events if e.get("action") == "failover" and "began" in e}

    def seconds(value):
        return f"{value:.3f}" if value is not None else "-"

    def line(row):
        if row["fault"] == "unexplained":
            return ("", "no failover explains these", "", "", "", "", row["lost"], row["duplicated"], "", "")
        event = events.get(row["began"], {})
        return (clock(row["began"]), row["fault"], event.get("from") or row["target"] or "-", event.get("to", "-"),
                seconds(row["failover_s"]), seconds(row["served_again_s"]), listed(row["lost"]),
                listed(row["duplicated"]), row["failed"],
                "the old primary answered as a primary after the election" if row["second_primary"] else "")
    return "<h2>Failovers</h2>" + table(
        ("time", "fault", "old primary", "new primary", "s without a primary", "s until served again", "hits lost",
         "numbers handed out twice", "hits failed", "notes"), map(line, rows)) + (
        "<p>Without a primary: from the fault to the Sentinels naming another (not timed for a failover no fault"
        " caused); served again: to the first acknowledged hit invoked after the election. A lost hit belongs to the"
        " failover that had not settled when it was acknowledged; a number handed out twice, to the last failover"
        " elected before it was (bench/verdict/failover.py).</p>")


def render_html(out):
    out = Path(out)
    data = read_json(out / VERDICT_JSON)
    verdict = render.from_json(data)
    run = read_json(out / RUN, {})
    check = read_json(out / CHECK, {})
    chaos = read_jsonl(out / CHAOS)
    formation = read_jsonl(out / FORMATION)
    history = read_history(out / HISTORY)
    scaling = scaling_of(read_jsonl(out / AUTOSCALE))
    picture = base64.b64encode(timeline_png(history, formation, chaos, scaling)).decode()
    recovery = recovery_section(recovery_times(chaos))
    outages = outage_section(outage_costs(read_jsonl(out / JOURNAL), chaos, verdict.lost))
    failovers = failover_section((data or {}).get("failovers"), chaos)
    actions = Counter((e.get("action"), e.get("outcome", "").partition(":")[0] + " (by hand)" * bool(e.get("manual")))
                      for e in actions_of(chaos))
    mode = check.get("mode")
    conclusion = story.conclusion(verdict, actions_of(chaos), recovery_times(chaos),
                                  story.retries_of(read_json(out / PROXY_METRICS)), mode,
                                  (data or {}).get("proof"))
    return f"""<!doctype html><html><head><meta charset=utf-8><title>factor6 check {html.escape(str(run.get('run', '')))}</title>
<style>body{{font:14px sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:12px;white-space:pre-line}}
.good{{color:#186a18}} .bad{{color:#a01010}} img{{max-width:100%}}
.conclusion{{font-size:16px;padding:10px;background:{"#e8f6e8" if verdict.status == VALID else "#f8ecec"}}}
.cause{{font-weight:bold}}</style></head><body>
<h1>factor6 consistency check</h1>
<p>{html.escape(story.settings(check, run))}</p>
<p class=conclusion>{html.escape(conclusion)}</p>
{verdict_section(verdict, (data or {}).get("run", run.get("run")), mode, (data or {}).get("interrupted"))}
{failovers}
<h2>Timeline</h2><img alt="throughput, users, failures, retries, p95 and p99 latency and formation over time,
 with chaos events and the instance count the autoscaler asked for" src="data:image/png;base64,{picture}">
{scaling_section(scaling)}
<h2>Recovery per action</h2>{recovery}
{outages}
<h2>Chaos actions</h2>{table(("action", "what it is", "outcome", "count"), [
    (action, IN_WORDS.get(action, (action,) * 2)[1], outcome, count)
    for (action, outcome), count in sorted(actions.items())])}
{table(("time", "action", "target", "pid", "outcome", "recovery s", "by hand"),
       [(clock(e.get("time", 0)), e.get("action"), e.get("target"), e.get("pid"), e.get("outcome"),
         e.get("recovery_s", ""), "yes" if e.get("manual") else "") for e in chaos])}
<p>Locust's own report: <a href="{LOCUST_HTML}">{LOCUST_HTML}</a>. Raw data: verdict.json, journal.jsonl, chaos.jsonl,
formation.jsonl, autoscale.jsonl, locust_stats_history.csv, {PROXY_METRICS}, {CHECK}.</p>
<details><summary>settings as recorded</summary>
<pre>{html.escape(json.dumps({"check": check, "run": run}, indent=1))}</pre></details>
</body></html>
"""


def write(out):
    path = Path(out) / REPORT_HTML
    path.write_text(render_html(out), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write(sys.argv[1]))
