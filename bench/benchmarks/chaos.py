"""Benchmark: what killing a process per second costs clients, against the same run without chaos.

    $ .venv/bin/python -m bench.bench_chaos --duration 600 --web 4 --rate 1

Runs scripts/check twice back to back on the same machine, without chaos and
with ``--chaos-mix kill`` at ``--rate``, then prints a Markdown table: hits,
lost, duplicated, client-visible failures (hits whose outcome stayed unknown or
failed after every retry), p50/p99 of the client-visible hit latency (invoke to
acknowledgement, retries included, from the journal) and the recovery time per
kill. The two runs are compared as a ratio, since the machine is shared.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import read_jsonl, recovery_times

ROOT = Path(__file__).resolve().parent.parent


def hit_latencies(journal):
    """Seconds from invoke to ok for every acknowledged hit."""
    invoked, latencies = {}, []
    for event in journal:
        if event["type"] == "invoke":
            invoked[event["key"]] = event["time"]
        elif event["type"] == "ok" and event["key"] in invoked:
            latencies.append(event["time"] - invoked[event["key"]])
    return sorted(latencies)


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))] if sorted_values else None


def measure(label, out, check_args):
    subprocess.run([ROOT / "scripts/check", "--report-dir", out, *check_args], check=False,
                   stdout=subprocess.DEVNULL)
    verdict = json.loads((out / "verdict.json").read_text())
    latencies = hit_latencies(read_jsonl(out / "journal.jsonl"))
    outcomes = verdict["stats"]["outcomes"]
    recoveries = recovery_times(read_jsonl(out / "chaos.jsonl"))
    return {
        "label": label, "valid": verdict["valid"], "hits": verdict["stats"]["operations"],
        "lost": verdict["counts"]["lost"], "duplicated": verdict["counts"]["duplicated"],
        # fail or info after every retry; "pending" hits were cut off by the stop, not failed.
        "client_failures": outcomes.get("fail", 0) + outcomes.get("info", 0),
        "cut_at_stop": outcomes.get("pending", 0),
        "p50_ms": 1000 * percentile(latencies, 0.50), "p99_ms": 1000 * percentile(latencies, 0.99),
        "kills": len(recoveries),
        "recovery_median_s": statistics.median(recoveries) if recoveries else None,
        "recovery_worst_s": max(recoveries) if recoveries else None,
    }


def fmt(value, digits=1):
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


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
    print("| run | valid | hits | lost | duplicated | client-visible failures | cut at stop | p50 ms | p99 ms |"
          " kills | recovery median s | recovery worst s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['label']} | {r['valid']} | {r['hits']} | {r['lost']} | {r['duplicated']} | {r['client_failures']}"
              f" | {r['cut_at_stop']} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {r['kills']} | {fmt(r['recovery_median_s'], 3)}"
              f" | {fmt(r['recovery_worst_s'], 3)} |")
    calm, chaos = runs
    print(f"\np99 with chaos / p99 without: {chaos['p99_ms'] / calm['p99_ms']:.2f}x (reports in {base})")
    return 0 if all(r["valid"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
