"""Benchmark: the session workload in each store under kill and reload chaos, and uploads of 1 MB and 10 MB.

    $ .venv/bin/python -m bench.benchmarks.workloads --duration 60 --web 4 --repeat 3

Sessions: scripts/check ``--workload session`` once per ``SESSION_STORE``
(redis, cookie, memory), back to back, ``--repeat`` rounds, with
``--chaos-mix kill,reload`` at ``--rate``: visitors, cart operations,
violations, and cart operations per second, each the median over the rounds;
redis against cookie as the median of each round's ratio, since the machine is
shared. Uploads:
``--workload upload`` at 1 MB and 10 MB without chaos: uploads acknowledged per
second, p50/p99 of a post (invoke to acknowledgement, from the journal), and
the peak RSS of any web worker and of the proxy, sampled every 50 ms with
psutil, against a worker's RSS at the start of the run. Then one user
uploading 10 MB at a time to one instance with one worker, so the worker's
peak RSS is that of one upload at a time.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

import statistics

from bench.benchmarks.stats import cell, median_of, percentile
from bench.paths import ROOT
from bench.runfolder import JOURNAL, VERDICT_JSON, read_json, read_jsonl
from bench.verdict import render

STORES = ("redis", "cookie", "memory")
SIZES = ("1M", "10M")
MB = 1024 * 1024


def formation_rss(check):
    """RSS of each gunicorn worker and of the proxy under the running check, by role."""
    rss = {"worker": [], "proxy": []}
    try:
        descendants = psutil.Process(check.pid).children(recursive=True)
    except psutil.Error:
        return rss
    for proc in descendants:
        try:
            line = " ".join(proc.cmdline())
            if "gunicorn" in line and "gunicorn" in " ".join(proc.parent().cmdline()):
                rss["worker"].append(proc.memory_info().rss)
            elif line.endswith("-m proxy"):
                rss["proxy"].append(proc.memory_info().rss)
        except psutil.Error:
            continue
    return rss


def run_check(out, args):
    """scripts/check, sampling the formation's memory while it runs: (verdict, samples)."""
    check = subprocess.Popen([ROOT / "scripts/check", "--report-dir", out, *args], stdout=subprocess.DEVNULL)
    samples = []
    while check.poll() is None:
        samples.append(formation_rss(check))
        time.sleep(0.05)
    return render.from_json(read_json(out / VERDICT_JSON)), [s for s in samples if s["worker"]]


def session_run(out, store, common, duration):
    verdict, _ = run_check(out, ["--workload", "session", "--session-store", store, *common])
    stats = verdict.stats["workloads"]["session"]["stats"] if verdict.stats.get("workloads") else verdict.stats
    operations = sum(count for name, count in stats.get("outcomes", {}).items() if name.split()[0] in ("add", "read"))
    return {"visitors": stats.get("visitors", 0), "cart_ops": operations, "ops_per_s": operations / duration,
            "status": verdict.status, "violations": {name: verdict.counts[name] for name in verdict.violations}}


def session_rounds(base, common, args):
    """Per store: the medians of its rounds, every round's status and violations; the per-round ratios."""
    rounds = [{store: session_run(base / f"{store}-{n}", store, common, args.duration) for store in STORES}
              for n in range(args.repeat)]
    summary = []
    for store in STORES:
        runs = [r[store] for r in rounds]
        numbers = median_of([{k: run[k] for k in ("visitors", "cart_ops", "ops_per_s")} for run in runs])
        summary.append({"store": store, **numbers, "statuses": [run["status"] for run in runs],
                        "violations": [run["violations"] for run in runs]})
    ratios = [r["redis"]["ops_per_s"] / r["cookie"]["ops_per_s"] for r in rounds if r["cookie"]["ops_per_s"]]
    return summary, ratios


def upload_run(out, size, common, duration):
    verdict, samples = run_check(out, ["--workload", "upload", "--upload-size", size, "--chaos-rate", "0", *common])
    journal = read_jsonl(out / JOURNAL)
    invoked = {e["key"]: e["time"] for e in journal if e["type"] == "invoke" and e.get("op") == "upload.post"}
    latencies = sorted(e["time"] - invoked[e["key"]] for e in journal if e["type"] == "ok" and e["key"] in invoked)
    return {"size": size, "status": verdict.status, "uploads": len(latencies), "per_s": len(latencies) / duration,
            "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
            "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None,
            "worker_start_mb": min(samples[0]["worker"]) / MB if samples else None,
            "worker_peak_mb": max(max(s["worker"]) for s in samples) / MB if samples else None,
            "proxy_peak_mb": max(max(s["proxy"] or [0]) for s in samples) / MB if samples else None}


def single_upload_rss(out, size, duration):
    """One worker, one upload at a time: its RSS at the start and at its peak, in MB."""
    _, samples = run_check(out, ["--workload", "upload", "--upload-size", size, "--chaos-rate", "0", "--web", "1",
                                 "--workers", "1", "--users", "1", "--duration", str(duration)])
    return min(samples[0]["worker"]) / MB, max(max(s["worker"]) for s in samples) / MB


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--web", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1.0, help="chaos actions per second (kill, reload)")
    parser.add_argument("--users", type=int, default=16, help="visitors at once")
    parser.add_argument("--uploaders", type=int, default=4, help="uploading users at once")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three session runs")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-workloads-"))
    common = ["--web", str(args.web), "--duration", str(args.duration)]
    chaos = ["--chaos-rate", str(args.rate), "--chaos-mix", "kill,reload", "--users", str(args.users)]
    sessions, ratios = session_rounds(base, [*common, *chaos], args)
    uploads = [upload_run(base / size, size, [*common, "--users", str(args.uploaders)], args.duration) for size in SIZES]
    print(f"Sessions: {args.web} instances, {args.duration:g} s, kill+reload at {args.rate:g}/s, {args.users} users,"
          f" medians of {args.repeat} round(s)\n")
    print("| SESSION_STORE | verdicts | visitors | cart operations | cart operations/s | violations per round |")
    print("|---|---|---|---|---|---|")
    for r in sessions:
        violations = "; ".join(", ".join(f"{name} {count}" for name, count in v.items()) or "none" for v in r["violations"])
        print(f"| {r['store']} | {', '.join(r['statuses'])} | {cell(r['visitors'])} | {cell(r['cart_ops'])}"
              f" | {cell(r['ops_per_s'])} | {violations} |")
    if ratios:
        print(f"\nredis / cookie cart operations per second: median {statistics.median(ratios):.2f}x"
              f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"\nUploads: {args.web} instances, {args.duration:g} s, no chaos, {args.uploaders} users\n")
    print("| size | verdict | uploads | uploads/s | p50 ms | p99 ms | worker RSS at start MB | worker peak RSS MB"
          " | proxy peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in uploads:
        print(f"| {r['size']} | {r['status']} | {r['uploads']} | {cell(r['per_s'], 2)} | {cell(r['p50_ms'])}"
              f" | {cell(r['p99_ms'])} | {cell(r['worker_start_mb'])} | {cell(r['worker_peak_mb'])}"
              f" | {cell(r['proxy_peak_mb'])} |")
    start, peak = single_upload_rss(base / "one-worker", SIZES[-1], min(args.duration, 20))
    print(f"\nOne worker, one {SIZES[-1]} upload at a time: RSS {start:.1f} MB at start, {peak:.1f} MB at peak"
          f" (+{peak - start:.1f} MB)")
    print(f"\nreports in {base}")
    expected = [set(r["statuses"]) == {"invalid" if r["store"] == "memory" else "valid"} for r in sessions]
    return 0 if all(expected) and all(r["status"] == "valid" for r in uploads) else 1


if __name__ == "__main__":
    sys.exit(main())
