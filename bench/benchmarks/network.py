"""Benchmark: what network faults between hosts cost clients, against the same --hosts run without them.

    $ .venv/bin/python -m bench.benchmarks.network --duration 60 --web 4      # as root

Runs ``scripts/check --hosts`` back to back with the same settings (4 web
instances over 3 web hosts, keyed load), one row each: no fault; 50 ± 20 ms
of latency on one web host; 5 % packet loss on one web host; a web host
partitioned from Redis. Each fault lasts ``--fault-s`` of every ``--every``
seconds, on a web host the seed picks; ``--runs`` repeats the four,
interleaved, and each figure is the median over the repeats. A row whose fault
this machine cannot make (no netem in the kernel, say) says so instead.

Per row: the verdict, client-visible failed hits (``fail`` or ``info`` after
every retry), p50/p99 of the hit latency (invoke to acknowledgement, retries
included) over the run and over the hits invoked while a fault held, and for
the partition the seconds from the cut until the proxy stopped sending the
host requests, and from the heal until it sent it one again, read from the
proxy's ``/_proxy/metrics`` polled every ``POLL_S`` from the load host (every
partition that held its full time, in every run; one the run's end cut short
is left out).

    $ python -m bench.benchmarks.network poll http://198.18.0.4:8000 proxy.jsonl 70   # run on the load host
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import requests

from bench.benchmarks.stats import cell, hit_latencies, median_or_none, percentile
from bench.harness.hosts import PROXY_PORT
from bench.harness.model import FormationSpec, LoadSpec
from bench.harness.options import scripts_check
from bench.paths import ROOT
from bench.runfolder import CHAOS, HOSTS_JSON, JOURNAL, VERDICT_JSON, read_json, read_jsonl
from bench.verdict import render

POLL_S = 0.1
POLLS = "proxy.jsonl"


def poll(url, path, seconds):
    """Appends the proxy's per-backend state and request count to path every POLL_S, for ``seconds``."""
    end = time.monotonic() + seconds
    with open(path, "a") as out:
        while time.monotonic() < end:
            try:
                backends = requests.get(f"{url}/_proxy/metrics", timeout=1).json()["backends"]
                out.write(json.dumps({"time": time.time(), "backends": {
                    b["address"]: {"state": b["state"], "requests": b["requests"]} for b in backends}}) + "\n")
                out.flush()
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(POLL_S)


def sent_to(polls, address):
    """[(time, requests sent to the host at address so far)], summed over its backends, from the polls."""
    totals, carried = [], 0
    previous = {}
    for row in polls:
        mine = {a: b["requests"] for a, b in row["backends"].items() if a.startswith(address + ":")}
        carried += sum(max(0, count - previous.get(a, 0)) for a, count in mine.items())
        previous = mine
        totals.append((row["time"], carried))
    return totals


def routing_times(polls, cut, heal, address):
    """Seconds from the cut to the host's last new request before the heal, and from the heal to its next one."""
    series = sent_to(polls, address)
    grew = [at for (at, count), (_, before) in zip(series[1:], series) if count > before]
    last = max((at for at in grew if cut <= at <= heal), default=cut)
    again = min((at for at in grew if at > heal), default=None)
    return last - cut, None if again is None else again - heal


def start_poller(out, process, seconds):
    """Once the formation is up (hosts.json names its instances), polls the proxy from the load host."""
    while process.poll() is None:
        layout = read_json(out / HOSTS_JSON, {})
        if "instances" in layout:
            hosts = layout["hosts"]
            url = f"http://{hosts['proxy']['address']}:{PROXY_PORT}"
            return subprocess.Popen(["ip", "netns", "exec", hosts["load"]["namespace"], sys.executable, "-m",
                                     "bench.benchmarks.network", "poll", url, str(out / POLLS), str(seconds)], cwd=ROOT)
        time.sleep(0.2)
    return None


def heal_of(fault, heals):
    """The heal event that ended fault."""
    return next(e for e in heals if e["after"] == fault["action"] and e["target"] == fault["target"]
                and e["time"] >= fault["time"])


def summarize(label, rows):
    """One table row: each figure the median over the runs, the routing times of every run listed."""
    refused = [r["refused"] for r in rows if "refused" in r]
    if refused:
        return {"label": label, "refused": refused[0]}
    numbers = ("hits", "failed", "faults", "p50_ms", "p99_ms", "fault_p50_ms", "fault_p99_ms")
    row = {"label": label, "status": "/".join(sorted({r["status"] for r in rows})), "runs": len(rows),
           "failed_total": sum(r["failed"] for r in rows)}
    for name in numbers:
        row[name] = median_or_none(r[name] for r in rows)
    for name in ("stop_s", "serve_s"):
        row[name] = sorted(t for r in rows for t in r.get(name, []) if t is not None)
    return row


def measure(label, formation, load):
    out = formation.report_dir
    out.mkdir(parents=True)
    check = subprocess.Popen(scripts_check(formation, load), stdout=subprocess.PIPE, text=True)
    poller = start_poller(out, check, load.duration + 10)
    printed, _ = check.communicate()
    if poller:
        poller.kill()
        poller.wait()
    if check.returncode == 2 and "chaos refused:" in printed:
        return {"label": label, "refused": printed.rpartition("chaos refused:")[2].strip()}
    verdict = render.from_json(read_json(out / VERDICT_JSON))
    journal = read_jsonl(out / JOURNAL)
    chaos = read_jsonl(out / CHAOS)
    heals = [e for e in chaos if e["action"] == "heal"]
    windows = [(e["time"], heal_of(e, heals)["time"]) for e in chaos if e.get("duration_s") and e["outcome"] == "ok"]
    during = {e["key"] for e in journal if e["type"] == "invoke" and any(a <= e["time"] < b for a, b in windows)}
    latencies = hit_latencies(journal)
    faulted = hit_latencies([e for e in journal if e["key"] in during])
    outcomes = verdict.stats.get("outcomes", {})
    row = {"label": label, "status": verdict.status, "hits": verdict.stats.get("operations", 0),
           "failed": outcomes.get("fail", 0) + outcomes.get("info", 0), "faults": len(windows),
           "p50_ms": 1000 * percentile(latencies, 0.5), "p99_ms": 1000 * percentile(latencies, 0.99),
           "fault_p50_ms": 1000 * percentile(faulted, 0.5) if faulted else None,
           "fault_p99_ms": 1000 * percentile(faulted, 0.99) if faulted else None}
    cuts = [(e, heal_of(e, heals)) for e in chaos if e["action"] == "partition" and e["outcome"] == "ok"]
    if cuts:
        hosts = read_json(out / HOSTS_JSON)["hosts"]
        polls = read_jsonl(out / POLLS)
        times = [routing_times(polls, cut["time"], heal["time"], hosts[cut["hosts"][0]]["address"])
                 for cut, heal in cuts if heal.get("lasted_s", 0) >= 0.9 * cut["duration_s"]]
        row["stop_s"] = [round(stop, 2) for stop, _ in times]
        row["serve_s"] = [None if serve is None else round(serve, 2) for _, serve in times]
    return row


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["poll"]:
        url, path, seconds = argv[1:]
        poll(url, path, float(seconds))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--web", type=int, default=4)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--every", type=float, default=15, help="seconds between the starts of two faults")
    parser.add_argument("--fault-s", type=float, default=5, help="seconds each fault lasts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1, help="repeats of the four runs, interleaved")
    args = parser.parse_args(argv)
    hosts = FormationSpec(web=args.web, require_hosts=True, hosts=True, fault_s=args.fault_s)
    load = LoadSpec(duration=args.duration, users=args.users, seed=args.seed, chaos_rate=1 / args.every)
    plans = [("no fault", "calm", hosts, replace(load, chaos_rate=0)),
             ("latency 50 ± 20 ms, one web host", "latency", hosts, replace(load, chaos_mix="latency")),
             ("loss 5 %, one web host", "loss", hosts, replace(load, chaos_mix="loss")),
             ("web host partitioned from Redis", "partition", replace(hosts, partitions="web-redis"),
              replace(load, chaos_mix="partition"))]
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-network-"))
    results = {label: [] for label, *_ in plans}
    for run in range(args.runs):  # interleaved, so that a busier spell of the machine spreads over every row
        for label, name, formation, faults in plans:
            results[label].append(measure(label, replace(formation, report_dir=base / f"{name}-{run + 1}"), faults))
    rows = [summarize(label, results[label]) for label, *_ in plans]
    print(f"{args.duration:g} s runs x {args.runs}, {args.web} web instances, faults of {args.fault_s:g} s"
          f" every {args.every:g} s; medians over the runs\n")
    print("| run | verdict | hits | failed hits (all runs) | faults | p50 ms | p99 ms | p50 ms in fault | p99 ms in fault |"
          " proxy stops sending, s | serves again after heal, s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        if "refused" in r:
            print(f"| {r['label']} | refused: {r['refused']} |" + " - |" * 9)
            continue
        times = [" ".join(cell(t, 2) for t in r[name]) or "-" for name in ("stop_s", "serve_s")]
        print(f"| {r['label']} | {r['status']} | {cell(r['hits'])} | {r['failed_total']} | {cell(r['faults'])}"
              f" | {cell(r['p50_ms'])} | {cell(r['p99_ms'])} | {cell(r['fault_p50_ms'])} | {cell(r['fault_p99_ms'])}"
              f" | {times[0]} | {times[1]} |")
    stops = [t for r in rows for t in r.get("stop_s", [])]
    serves = [t for r in rows for t in r.get("serve_s", [])]
    if stops:
        print(f"\npartition: proxy stops sending after a median {statistics.median(stops):.2f} s (max {max(stops):.2f}),"
              f" serves again a median {statistics.median(serves):.2f} s (max {max(serves):.2f}) after the heal")
    print(f"reports in {base}")
    return 0 if all(r.get("status", "valid") == "valid" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
