"""Benchmark: the Jepsen experiment on one machine: what each durability setting loses when the primary fails.

    $ .venv/bin/python -m bench.benchmarks.failover --duration 40 --rate 0.1 --web 2

Runs ``scripts/check --redis sentinel`` once per durability setting (``async``,
``wait`` 1, ``wait`` 2, ``waitaof`` 1) and fault (``primary-kill``,
``primary-freeze``), plus calm runs for throughput: one on a single server and one
per durability setting on the replicated formation. Prints a Markdown table per
fault: failovers (those the fault caused, and any a Sentinel started by itself),
acknowledged hits lost, numbers handed out twice, client-visible failed hits (fail,
or unknown after every retry), median and worst failover time (the fault to the
Sentinels naming a new primary), and throughput (acknowledged hits per second)
relative to the single server's calm run. Every figure comes from the run folders'
verdict.json (bench/verdict/failover.py's breakdown), which the table names.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.benchmarks.stats import cell, median_or_none
from bench.harness.model import FormationSpec, LoadSpec
from bench.harness.options import scripts_check
from bench.runfolder import VERDICT_JSON, read_json

DURABILITY = {"async": {}, "wait 1": {"REDIS_DURABILITY": "wait", "REDIS_WAIT_REPLICAS": "1"},
              "wait 2": {"REDIS_DURABILITY": "wait", "REDIS_WAIT_REPLICAS": "2"},
              "waitaof 1": {"REDIS_DURABILITY": "waitaof", "REDIS_WAIT_REPLICAS": "1"}}
FAULTS = ("primary-kill", "primary-freeze")


def run_check(formation, load, env):
    subprocess.run(scripts_check(formation, load), check=False, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    return read_json(formation.report_dir / VERDICT_JSON, {})


def summarize(verdict, duration):
    rows = [row for row in verdict.get("failovers", []) if row["fault"] != "unexplained"]
    caused = [row["failover_s"] for row in rows if row["fault"] != "none" and row.get("failover_s") is not None]
    outcomes = verdict.get("stats", {}).get("outcomes", {})
    twice = {item["number"] for item in verdict.get("duplicated", []) if "number" in item}
    return {"status": verdict.get("status", "unknown"), "failovers": len(caused),
            "unasked": sum(1 for row in rows if row["fault"] == "none"),
            "lost": sum(1 for item in verdict.get("lost", []) if "key" in item), "twice": len(twice),
            "failed": outcomes.get("fail", 0) + outcomes.get("info", 0),
            "median_s": median_or_none(caused), "worst_s": max(caused, default=None),
            "rate": verdict.get("ok", 0) / duration}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=40, help="seconds of load per faulted run")
    parser.add_argument("--calm", type=float, default=15, help="seconds of load per calm run")
    parser.add_argument("--rate", type=float, default=0.1, help="primary faults per second")
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-failover-"))
    one, sentinel = FormationSpec(web=args.web), FormationSpec(web=args.web, redis="sentinel")
    calm = LoadSpec(users=args.users, seed=args.seed, duration=args.calm, chaos_rate=0)
    single = summarize(run_check(replace(one, report_dir=base / "single"), calm, {}), args.calm)["rate"] \
        or float("nan")
    relative = {name: summarize(run_check(replace(sentinel, report_dir=base / f"calm-{name.replace(' ', '')}"), calm,
                                          env), args.calm)["rate"] / single for name, env in DURABILITY.items()}
    print(f"Reports in {base}; single server, calm: {single:.0f} acknowledged hits/s.\n")
    for fault in FAULTS:
        print(f"**{fault}**, {args.rate:g}/s for {args.duration:g} s\n")
        print("| durability | verdict | failovers (+ unasked) | acknowledged lost | numbers twice | failed hits |"
              " failover median s | worst s | throughput vs single (calm) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, env in DURABILITY.items():
            faulted = replace(calm, duration=args.duration, chaos_rate=args.rate, chaos_mix=fault)
            out = base / f"{fault}-{name.replace(' ', '')}"
            r = summarize(run_check(replace(sentinel, report_dir=out), faulted, env), args.duration)
            print(f"| {name} | {r['status']} | {r['failovers']} (+{r['unasked']}) | {r['lost']} | {r['twice']} |"
                  f" {r['failed']} | {cell(r['median_s'], 2)} | {cell(r['worst_s'], 2)} | {relative[name]:.2f} |",
                  flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
