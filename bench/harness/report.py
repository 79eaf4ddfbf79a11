"""The HTML report of one check: verdict, a timeline picture with every chaos event, recovery times, scaling.

    $ python -m bench.report reports/20261129-193000-atomic   # writes report.html there

It reads only what a run left in its folder: verdict.json, run.json,
chaos.jsonl, formation.jsonl, autoscale.jsonl (with ``--autoscale``) and
Locust's locust_stats_history.csv, so a report can be rebuilt at any time after
the run.
"""
import base64
import csv
import html
import io
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG only
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

ACTION_COLOURS = {"kill": "tab:red", "term": "tab:orange", "reload": "tab:blue", "rolling": "tab:cyan",
                  "freeze": "tab:purple", "scale": "tab:green"}
RETRY_NAME = "POST /hits (retry)"


def read_json(path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def read_jsonl(path):
    """The JSON lines of a file; a line still being written (not JSON yet) is left out."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows


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
    """Seconds from each kill or term to a replacement worker serving (the monkey's follow-up events)."""
    return [e["recovery_s"] for e in chaos_events if e.get("after") in ("kill", "term") and "recovery_s" in e]


def actions_of(chaos_events):
    """The actions themselves, without their follow-ups (recovery, thaw)."""
    return [e for e in chaos_events if e.get("action") in ACTION_COLOURS]


def scaling_of(autoscale_events):
    """The autoscaler's start and each change, without its holds."""
    return [e for e in autoscale_events if e.get("action") in ("start", "up", "down")]


def timeline_png(history, formation, chaos_events, scaling=()):
    fig, (load, latency, procs) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True,
                                               gridspec_kw={"height_ratios": [3, 2, 1.4]})
    total = history.get("Aggregated", [])
    t0 = min([row[0] for row in total] + [s["time"] for s in formation] + [e["time"] for e in chaos_events]
             or [0])
    if total:
        times = [row[0] - t0 for row in total]
        load.plot(times, [row[1] for row in total], label="requests/s", color="black")
        load.plot(times, [row[2] for row in total], label="failures/s", color="tab:red")
        load.plot(times, [row[5] for row in total], label="users", color="tab:gray", linestyle="--")
        latency.plot(times, [row[3] for row in total], label="p99 ms", color="tab:brown")
        latency.plot(times, [row[4] for row in total], label="p95 ms", color="tab:pink")
    retries = history.get(RETRY_NAME, [])
    if retries:
        load.plot([row[0] - t0 for row in retries], [row[1] for row in retries], label="retries/s", color="tab:olive")
    if formation:
        times = [s["time"] - t0 for s in formation]
        procs.step(times, [s["instances"] for s in formation], where="post", label="instances")
        procs.step(times, [s["workers"] for s in formation], where="post", label="workers")
    if scaling:
        # Extended to the end, so the last count asked for shows as a level, not a point.
        ends = [scaling[-1]["time"] - t0] + ([formation[-1]["time"] - t0] if formation else [])
        procs.step([e["time"] - t0 for e in scaling] + [max(ends)], [e["desired"] for e in scaling]
                   + [scaling[-1]["desired"]], where="post", label="asked by autoscale", linestyle="--",
                   color="tab:green")
    for event in chaos_events:
        for axis in (load, latency, procs):
            axis.axvline(event["time"] - t0, color=ACTION_COLOURS.get(event.get("action"), "grey"),
                         alpha=0.35, linewidth=1)
    handles = [plt.Line2D([], [], color=c, alpha=0.6, label=a) for a, c in ACTION_COLOURS.items()
               if any(e.get("action") == a for e in chaos_events)]
    load.legend(handles=load.get_legend_handles_labels()[0] + handles, loc="upper left", fontsize=8, ncol=4)
    latency.legend(loc="upper left", fontsize=8)
    procs.legend(loc="upper left", fontsize=8)
    load.set_ylabel("per second; users")
    latency.set_ylabel("ms")
    procs.set_ylabel("count")
    procs.set_xlabel("seconds since start (vertical lines: chaos actions)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def table(headers, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def verdict_section(verdict):
    if not verdict:
        return "<h2 class=bad>NO VERDICT</h2><p>The run wrote no verdict.json; see locust.log.</p>"
    state = {0: "VALID", 1: "INVALID"}.get(verdict.get("status"), "NO VERDICT")
    rows = [("ok", verdict.get("ok", 0), "")]
    for name in ("lost", "duplicated", "unexpected", "gaps", "recovered", "not_applied"):
        items = verdict.get(name) or verdict.get(name.replace("_", "-")) or []
        rows.append((name, len(items), "; ".join(json.dumps(i) for i in items[:5])))
    errors = verdict.get("source", {}).get("errors", []) + verdict.get("errors", [])
    return (f"<h2 class={'good' if state == 'VALID' else 'bad'}>{state}</h2>"
            f"<p>run <code>{html.escape(str(verdict.get('run')))}</code></p>"
            + table(("category", "count", "first items"), rows)
            + "".join(f"<p class=bad>error: {html.escape(e)}</p>" for e in errors))


def scaling_section(scaling):
    if not scaling:
        return ""
    return "<h2>Autoscaling</h2>" + table(("time", "decision", "instances", "why"), [
        (clock(e["time"]), e["action"], f"{e['previous']} → {e['desired']}" if "previous" in e else e["desired"],
         e.get("reason", "")) for e in scaling])


def clock(wall):
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"


def render(out):
    out = Path(out)
    verdict = read_json(out / "verdict.json")
    run = read_json(out / "run.json", {})
    chaos = read_jsonl(out / "chaos.jsonl")
    formation = read_jsonl(out / "formation.jsonl")
    history = read_history(out / "locust_stats_history.csv")
    scaling = scaling_of(read_jsonl(out / "autoscale.jsonl"))
    picture = base64.b64encode(timeline_png(history, formation, actions_of(chaos), scaling)).decode()
    recoveries = recovery_times(chaos)
    recovery = (f"<p>{len(recoveries)} kills measured: median {statistics.median(recoveries):.3f} s,"
                f" worst {max(recoveries):.3f} s (signal to a replacement worker serving).</p>"
                if recoveries else "<p>No kill recovery was measured in this run.</p>")
    actions = Counter(f"{e.get('action')} {e.get('outcome', '').partition(':')[0]}" for e in actions_of(chaos))
    return f"""<!doctype html><html><head><meta charset=utf-8><title>factor6 check {html.escape(str(run.get('run', '')))}</title>
<style>body{{font:14px sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:12px}}
.good{{color:#186a18}} .bad{{color:#a01010}} img{{max-width:100%}}</style></head><body>
<h1>factor6 consistency check</h1>
<p>{html.escape(json.dumps(run))}</p>
{verdict_section(verdict)}
<h2>Timeline</h2><img alt="throughput, users, failures, retries, p95 and p99 latency and formation over time,
 with chaos events and the instance count the autoscaler asked for" src="data:image/png;base64,{picture}">
{scaling_section(scaling)}
<h2>Recovery per kill</h2>{recovery}
<h2>Chaos actions</h2>{table(("action and outcome", "count"), sorted(actions.items()))}
{table(("time", "action", "target", "pid", "outcome", "recovery s"),
       [(clock(e.get("time", 0)), e.get("action"), e.get("target"), e.get("pid"), e.get("outcome"),
         e.get("recovery_s", "")) for e in chaos])}
<p>Locust's own report: <a href="locust.html">locust.html</a>. Raw data: verdict.json, journal.jsonl, chaos.jsonl,
formation.jsonl, autoscale.jsonl, locust_stats_history.csv.</p>
</body></html>
"""


def write(out):
    path = Path(out) / "report.html"
    path.write_text(render(out), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write(sys.argv[1]))
