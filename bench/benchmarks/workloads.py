"""Benchmark: the session workload in each store under kill and reload chaos, and uploads of 1 MB and 10 MB.

    $ .venv/bin/python -m bench.benchmarks.workloads --duration 60 --web 4 --repeat 3
    $ .venv/bin/python -m bench.benchmarks.workloads --sessions memory-sticky --sizes ""   # one row, no uploads

Sessions: scripts/check ``--workload session`` once per ``SESSION_STORE``
(redis, cookie, memory, and memory behind ``--proxy-sticky`` with one worker
per instance), back to back, ``--repeat`` rounds, with
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
from dataclasses import replace
from pathlib import Path

import psutil

import statistics

from bench.benchmarks.stats import cell, median_of, percentile
from bench.harness.model import FormationSpec, LoadSpec
from bench.harness.options import scripts_check
from bench.runfolder import JOURNAL, PROXY_METRICS, VERDICT_JSON, read_json, read_jsonl
from bench.verdict import render

# Each session run: its name, its formation's settings, and the verdict it must reach under kill and reload.
SESSION_RUNS = {
    "redis": ({"session_store": "redis"}, "valid"),
    "cookie": ({"session_store": "cookie"}, "valid"),
    "memory": ({"session_store": "memory"}, "invalid"),
    # A pin names an instance, so one worker each: the stickiness hides the wrong store only until a restart.
    "memory-sticky": ({"session_store": "memory", "proxy_sticky": True, "workers": 1}, "invalid"),
}
SIZES = "1M,10M"
MB = 1024 * 1024


def names(choices=None):
    """An argparse type: a comma-separated list, each one of ``choices`` when given."""
    def parse(text):
        listed = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in listed if choices is not None and name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: choose from {', '.join(choices)}")
        return listed
    return parse


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


def run_check(formation, load):
    """scripts/check, sampling the formation's memory while it runs: (verdict, samples)."""
    out = formation.report_dir
    check = subprocess.Popen(scripts_check(formation, load), stdout=subprocess.DEVNULL)
    samples = []
    while check.poll() is None:
        samples.append(formation_rss(check))
        time.sleep(0.05)
    return render.from_json(read_json(out / VERDICT_JSON)), [s for s in samples if s["worker"]]


def session_run(out, name, formation, load):
    settings = SESSION_RUNS[name][0]
    verdict, _ = run_check(replace(formation, report_dir=out, **settings), replace(load, workload="session"))
    stats = verdict.stats["workloads"]["session"]["stats"] if verdict.stats.get("workloads") else verdict.stats
    operations = sum(count for name, count in stats.get("outcomes", {}).items() if name.split()[0] in ("add", "read"))
    return {"visitors": stats.get("visitors", 0), "cart_ops": operations, "ops_per_s": operations / load.duration,
            "status": verdict.status, "violations": {name: verdict.counts[name] for name in verdict.violations},
            "sticky": read_json(out / PROXY_METRICS, {}).get("end", {}).get("totals", {}).get("sticky", {"pins": 0})}


def session_rounds(base, formation, load, args):
    """Per session run: the medians of its rounds, every round's status and violations; the per-round ratios."""
    rounds = [{name: session_run(base / f"{name}-{n}", name, formation, load) for name in args.sessions}
              for n in range(args.repeat)]
    summary = []
    for name in args.sessions:
        runs = [r[name] for r in rounds]
        numbers = median_of([{k: run[k] for k in ("visitors", "cart_ops", "ops_per_s")} for run in runs])
        summary.append({"store": name, **numbers, "statuses": [run["status"] for run in runs],
                        "violations": [run["violations"] for run in runs], "sticky": [run["sticky"] for run in runs]})
    ratios = [r["redis"]["ops_per_s"] / r["cookie"]["ops_per_s"] for r in rounds
              if "redis" in r and r.get("cookie", {}).get("ops_per_s")]
    return summary, ratios


def upload_run(formation, load):
    """One upload run of ``load.upload_size`` without chaos: its rate, latencies and the processes' memory."""
    verdict, samples = run_check(formation, replace(load, workload="upload", chaos_rate=0))
    out, size, duration = formation.report_dir, load.upload_size, load.duration
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
    _, samples = run_check(FormationSpec(web=1, workers=1, report_dir=out),
                           LoadSpec(workload="upload", upload_size=size, chaos_rate=0, users=1, duration=duration))
    return min(samples[0]["worker"]) / MB, max(max(s["worker"]) for s in samples) / MB


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--web", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1.0, help="chaos actions per second (kill, reload)")
    parser.add_argument("--users", type=int, default=16, help="visitors at once")
    parser.add_argument("--uploaders", type=int, default=4, help="uploading users at once")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the session runs")
    parser.add_argument("--sessions", type=names(SESSION_RUNS), default=",".join(SESSION_RUNS),
                        help="session runs, comma-separated (default %(default)s)")
    parser.add_argument("--sizes", type=names(), default=SIZES, help='upload sizes (default %(default)s; "": none)')
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-workloads-"))
    formation = FormationSpec(web=args.web)
    chaos = LoadSpec(duration=args.duration, chaos_rate=args.rate, chaos_mix="kill,reload", users=args.users)
    sessions, ratios = session_rounds(base, formation, chaos, args)
    uploads = [upload_run(replace(formation, report_dir=base / size),
                          LoadSpec(duration=args.duration, users=args.uploaders, upload_size=size))
               for size in args.sizes]
    print(f"Sessions: {args.web} instances, {args.duration:g} s, kill+reload at {args.rate:g}/s, {args.users} users,"
          f" medians of {args.repeat} round(s)\n")
    print("| session run | verdicts | visitors | cart operations | cart operations/s | violations per round |")
    print("|---|---|---|---|---|---|")
    for r in sessions:
        violations = "; ".join(", ".join(f"{name} {count}" for name, count in v.items()) or "none" for v in r["violations"])
        print(f"| {r['store']} | {', '.join(r['statuses'])} | {cell(r['visitors'])} | {cell(r['cart_ops'])}"
              f" | {cell(r['ops_per_s'])} | {violations} |")
    for r in sessions:
        if any(pins["pins"] for pins in r["sticky"]):
            print(f"\n{r['store']}, the proxy's sticky counters per round: "
                  + "; ".join(f"{p['pins']} pins, {p['repins']} re-pins, {p['hits']} hits" for p in r["sticky"]))
    if ratios:
        print(f"\nredis / cookie cart operations per second: median {statistics.median(ratios):.2f}x"
              f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    if args.sizes:
        print_uploads(args, uploads, single_upload_rss(base / "one-worker", args.sizes[-1], min(args.duration, 20)))
    print(f"\nreports in {base}")
    expected = [set(r["statuses"]) == {SESSION_RUNS[r["store"]][1]} for r in sessions]
    return 0 if all(expected) and all(r["status"] == "valid" for r in uploads) else 1


def print_uploads(args, uploads, single):
    print(f"\nUploads: {args.web} instances, {args.duration:g} s, no chaos, {args.uploaders} users\n")
    print("| size | verdict | uploads | uploads/s | p50 ms | p99 ms | worker RSS at start MB | worker peak RSS MB"
          " | proxy peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in uploads:
        print(f"| {r['size']} | {r['status']} | {r['uploads']} | {cell(r['per_s'], 2)} | {cell(r['p50_ms'])}"
              f" | {cell(r['p99_ms'])} | {cell(r['worker_start_mb'])} | {cell(r['worker_peak_mb'])}"
              f" | {cell(r['proxy_peak_mb'])} |")
    start, peak = single
    print(f"\nOne worker, one {args.sizes[-1]} upload at a time: RSS {start:.1f} MB at start, {peak:.1f} MB at peak"
          f" (+{peak - start:.1f} MB)")


if __name__ == "__main__":
    sys.exit(main())
