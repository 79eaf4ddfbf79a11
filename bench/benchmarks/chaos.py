"""Benchmark: what killing a process per second costs clients, against the same run without chaos.

    $ .venv/bin/python -m bench.benchmarks.chaos --duration 600 --web 4 --rate 1

Runs scripts/check twice back to back on the same machine, without chaos and
with ``--chaos-mix kill`` at ``--rate``, then prints a Markdown table: hits,
lost, duplicated, client-visible failures (hits whose outcome stayed unknown or
failed after every retry), p50/p99 of the client-visible hit latency (invoke to
acknowledgement, retries included, from the journal) and the recovery time per
kill. The two runs are compared as a ratio, since the machine is shared.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.benchmarks.stats import cell, hit_latencies, median_or_none, percentile
from bench.harness.report import recovery_times
from bench.paths import ROOT
from bench.runfolder import CHAOS, JOURNAL, VERDICT_JSON, read_json, read_jsonl
from bench.verdict import render


def measure(label, out, check_args):
    subprocess.run([ROOT / "scripts/check", "--report-dir", out, *check_args], check=False,
                   stdout=subprocess.DEVNULL)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--web", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1.0, help="kills per second")
    parser.add_argument("--users", type=int, default=16)
    args = parser.parse_args(argv)
    common = ["--web", str(args.web), "--duration", str(args.duration), "--users", str(args.users)]
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-chaos-"))
    runs = [measure("no chaos", base / "calm", [*common, "--chaos-rate", "0"]),
            measure(f"kill {args.rate:g}/s", base / "chaos", [*common, "--chaos-rate", str(args.rate),
                                                              "--chaos-mix", "kill"])]
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


if __name__ == "__main__":
    sys.exit(main())
