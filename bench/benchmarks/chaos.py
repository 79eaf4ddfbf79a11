"""Benchmark: the chaos monkey under full load: what its kills cost clients, and whether it keeps its rate.

    $ .venv/bin/python -m bench.benchmarks.chaos rate --duration 60 --rate 1 --runs 3
    $ .venv/bin/python -m bench.benchmarks.chaos cost --duration 600 --web 4 --rate 1

``rate`` runs scripts/check ``--runs`` times with ``--chaos-rate`` and the check's
default mix, and prints per run and as medians: the actions the rate asked for
(rate x the seconds the schedule ran, the proof's ``chaos_asked``), the actions
made (applied or skipped: every turn the schedule took), the achieved rate and
their ratio, the median and longest gap between two actions, and how busy the
Locust process was (its CPU share of one core, sampled through the run), since
the engine runs in it, among the users' greenlets.

``cost`` runs scripts/check twice back to back on the same machine, without chaos
and with ``--chaos-mix kill`` at ``--rate``, then prints a Markdown table: hits,
lost, duplicated, client-visible failures (hits whose outcome stayed unknown or
failed after every retry), p50/p99 of the client-visible hit latency (invoke to
acknowledgement, retries included, from the journal) and the recovery time per
kill. The two runs are compared as a ratio, since the machine is shared.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil

from bench.benchmarks.stats import cell, hit_latencies, median_of, median_or_none, percentile
from bench.chaos.vocabulary import is_action
from bench.harness.report import recovery_times
from bench.harness.model import FormationSpec, LoadSpec
from bench.harness.options import scripts_check
from bench.runfolder import CHAOS, JOURNAL, VERDICT_JSON, read_json, read_jsonl
from bench.verdict import render

SAMPLE_S = 2.0


def check(formation, load):
    """Runs scripts/check to its end; returns the Locust process's CPU share of one core, sampled meanwhile."""
    run = subprocess.Popen(scripts_check(formation, load), stdout=subprocess.DEVNULL)
    shares, locust = [], None
    while run.poll() is None:
        time.sleep(SAMPLE_S)
        try:
            if locust is None:
                found = [p for p in psutil.Process(run.pid).children(recursive=True)
                         if any("locust" in part for part in p.cmdline()[:2])]
                locust = found[0] if found else None
                if locust:
                    locust.cpu_percent()  # the first reading only starts the count
            elif locust.is_running():
                shares.append(locust.cpu_percent() / 100)
        except psutil.Error:
            locust = None
    return median_or_none(shares)


def measure_cost(label, formation, load):
    check(formation, load)
    out = formation.report_dir
    verdict = render.from_json(read_json(out / VERDICT_JSON))
    latencies = hit_latencies(read_jsonl(out / JOURNAL))
    outcomes = verdict.stats.get("outcomes", {})
    recoveries = recovery_times(read_jsonl(out / CHAOS)).get("kill", [])
    return {
        "label": label, "status": verdict.status, "hits": verdict.stats.get("operations", 0),
        "lost": verdict.counts["lost"], "duplicated": verdict.counts["duplicated"],
        # fail or info after every retry; "pending" hits were cut off by the stop, not failed.
        "client_failures": outcomes.get("fail", 0) + outcomes.get("info", 0),
        "cut_at_stop": outcomes.get("pending", 0),
        "p50_ms": 1000 * percentile(latencies, 0.50), "p99_ms": 1000 * percentile(latencies, 0.99),
        "kills": len(recoveries),
        "recovery_median_s": median_or_none(recoveries),
        "recovery_worst_s": max(recoveries, default=None),
    }


def cost(args):
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-chaos-"))
    load = LoadSpec(duration=args.duration, users=args.users, chaos_rate=0)
    runs = [measure_cost("no chaos", FormationSpec(web=args.web, report_dir=base / "calm"), load),
            measure_cost(f"kill {args.rate:g}/s", FormationSpec(web=args.web, report_dir=base / "chaos"),
                         replace(load, chaos_rate=args.rate, chaos_mix="kill"))]
    print("| run | verdict | hits | lost | duplicated | client-visible failures | cut at stop | p50 ms | p99 ms |"
          " kills | recovery median s | recovery worst s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['label']} | {r['status']} | {r['hits']} | {r['lost']} | {r['duplicated']} | {r['client_failures']}"
              f" | {r['cut_at_stop']} | {cell(r['p50_ms'])} | {cell(r['p99_ms'])} | {r['kills']} | {cell(r['recovery_median_s'], 3)}"
              f" | {cell(r['recovery_worst_s'], 3)} |")
    calm, chaos = runs
    print(f"\np99 with chaos / p99 without: {chaos['p99_ms'] / calm['p99_ms']:.2f}x (reports in {base})")
    return 0 if all(r["status"] == "valid" for r in runs) else 1


def measure_rate(formation, load):
    locust_cpu = check(formation, load)
    out, rate = formation.report_dir, load.chaos_rate
    verdict = read_json(out / VERDICT_JSON)
    asked = verdict["proof"]["chaos_asked"]
    seconds = asked / rate
    times = [e["time"] for e in read_jsonl(out / CHAOS) if is_action(e) and not e.get("manual")]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])] or [0.0]
    return {"asked": asked, "made": len(times), "achieved_per_s": len(times) / seconds, "kept": len(times) / asked,
            "gap_median_s": median_or_none(gaps), "gap_max_s": max(gaps), "locust_cpu": locust_cpu or 0.0,
            "hits_per_s": verdict["stats"].get("operations", 0) / seconds, "valid": verdict["status"] == "valid"}


def rate_kept(args):
    load = LoadSpec(duration=args.duration, users=args.users, chaos_rate=args.rate)
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-chaos-rate-"))
    header = ("| run | asked | made | achieved /s | kept | gap median s | gap max s | Locust CPU (cores) | hits/s |"
              " load avg |\n|---|---|---|---|---|---|---|---|---|---|")
    print(header, flush=True)
    runs = []
    for n in range(args.runs):
        runs.append(measure_rate(FormationSpec(web=args.web, report_dir=base / f"run-{n}"), load))
        r = {**runs[-1], "load": os.getloadavg()[0]}
        print(f"| {n + 1} | {r['asked']:.1f} | {r['made']} | {r['achieved_per_s']:.3f} | {r['kept']:.1%}"
              f" | {r['gap_median_s']:.3f} | {r['gap_max_s']:.3f} | {r['locust_cpu']:.2f} | {r['hits_per_s']:.0f}"
              f" | {r['load']:.1f} |", flush=True)
    m = median_of([{k: v for k, v in r.items() if k != "valid"} for r in runs])
    print(f"| median | {m['asked']:.1f} | {m['made']:g} | {m['achieved_per_s']:.3f} | {m['kept']:.1%}"
          f" | {m['gap_median_s']:.3f} | {m['gap_max_s']:.3f} | {m['locust_cpu']:.2f} | {m['hits_per_s']:.0f} | |")
    print(f"\nreports in {base}; every verdict valid: {all(r['valid'] for r in runs)}")
    return 0 if m["achieved_per_s"] >= 0.95 * args.rate and all(r["valid"] for r in runs) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="measurement", required=True)
    for name, duration, help_text in (("rate", 60, "does the schedule keep its rate under load"),
                                      ("cost", 600, "what a kill a second costs clients")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--duration", type=float, default=duration)
        command.add_argument("--web", type=int, default=4)
        command.add_argument("--rate", type=float, default=1.0, help="chaos actions per second")
        command.add_argument("--users", type=int, default=16)
        if name == "rate":
            command.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    return rate_kept(args) if args.measurement == "rate" else cost(args)


if __name__ == "__main__":
    sys.exit(main())
