"""Benchmark: how soon autoscaling adds serving capacity to a spike, and what it does to p95 during the spike.

    $ .venv/bin/python -m bench.benchmarks.autoscale --runs 3 --duration 90 --web 2 --max 8 --work-ms 100

Runs ``scripts/check --shape spike --chaos-rate 0`` back to back on the same
machine with the same settings, alternating without and with ``--autoscale``,
``--runs`` times each, and prints a Markdown table of the medians:

- p50/p95 of the client-visible hit latency (invoke to acknowledgement, retries
  included, from the journal) of the hits started during the spike (from its
  first new user's first hit until Locust's user count leaves its peak), and p95 of those started after its
  first ``SETTLED_S`` seconds, once new capacity has had time to arrive;
- with autoscaling, seconds from the spike's start to the autoscaler's first
  "up", to the first new instance in the proxy's rotation, to the first request a
  new instance answered, and to every new instance having answered one (the
  proxy's metrics, polled every ``POLL_S``, so each is up to that much late; the
  polls are kept in ``proxy.jsonl`` next to each run's report).

``WORK_MS`` (``--work-ms``) makes each hit wait that long in the instance, as for
a database call: capacity per instance is then its threads, not the machine's
cores, and more instances are more capacity even on a small machine.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import requests

from bench.benchmarks.stats import cell, hit_latencies, median_or_none, percentile
from bench.harness.report import read_history
from bench.harness.model import FormationSpec, LoadSpec
from bench.harness.options import scripts_check
from bench.runfolder import AUTOSCALE, FORMATION, FORMATION_ENV, HISTORY, JOURNAL, VERDICT_JSON, read_json, read_jsonl
from bench.verdict import render
from common.schema import parse_key
POLL_S = 0.2
SETTLED_S = 10.0


class ProxyPoller:
    """Polls the run's ``/_proxy/metrics`` in a thread: per backend, requests answered and in flight."""

    def __init__(self, env_file):
        self.env_file, self.rows = env_file, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()

    def url(self):
        settings = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line)
        return f"http://127.0.0.1:{settings['PROXY_PORT']}/_proxy/metrics"

    def poll(self):
        url = None
        while not self.stopping.wait(POLL_S):
            try:
                url = url or self.url()
                backends = requests.get(url, timeout=1).json()["backends"]
            except (OSError, KeyError, ValueError, requests.RequestException):
                continue  # not written or not up yet, or gone
            up = [b for b in backends if b["state"] == "up"]
            self.rows.append({"time": time.time(),
                              "backends": {b["name"]: b["requests"] - b["in_flight"] - b["failures"] for b in up},
                              "in_flight": {b["name"]: b["in_flight"] for b in up}})


def user_of(key):
    """Locust's user number from a key ``<run>:<journal>.<user>:<seq>``."""
    return int(parse_key(key)[1].rpartition(".")[2])


def spike_window(journal, history, base_users):
    """From the first hit of the first user beyond the base ones (the spike as the proxy first felt it)
    to the first second of Locust's history in which the user count had left its peak.

    Read from the run rather than from bench/shapes.py, whose import would bring gevent's patching here."""
    start = min(e["time"] for e in journal if e["type"] == "invoke" and user_of(e["key"]) > base_users)
    users = [(row[0], row[5]) for row in history["Aggregated"]]
    peak = max(count for _, count in users)
    reached = next(at for at, count in users if count == peak)
    return start, next(at for at, count in users if at > reached and count < peak)


def capacity_times(start, polls, scaling, peak):
    """Seconds from the spike's start to the first up, to a new instance in rotation, to it answering,
    and to as many new instances answering as it took to reach ``peak``."""
    before = [row for row in polls if row["time"] < start]
    old = set(before[-1]["backends"]) if before else set()
    after = [row for row in polls if row["time"] >= start]

    def answering(row):
        return sum(1 for name, answered in row["backends"].items() if name not in old and answered > 0)

    routable = next((row["time"] for row in after if set(row["backends"]) - old), None)
    serving = next((row["time"] for row in after if answering(row)), None)
    full = next((row["time"] for row in after if peak > len(old) and answering(row) >= peak - len(old)), None)
    decided = next((e["time"] for e in scaling if e["action"] == "up" and e["time"] >= start), None)
    return {name: None if at is None else at - start for name, at in (
        ("decision_s", decided), ("routable_s", routable), ("serving_s", serving), ("all_serving_s", full))}


def measure(label, formation, load, env, args):
    out = formation.report_dir
    out.mkdir(parents=True)
    with ProxyPoller(out / FORMATION_ENV) as poller:
        subprocess.run(scripts_check(formation, load), env=env, check=False, stdout=subprocess.DEVNULL)
    (out / "proxy.jsonl").write_text("".join(json.dumps(row) + "\n" for row in poller.rows))
    verdict = render.from_json(read_json(out / VERDICT_JSON))
    journal = read_jsonl(out / JOURNAL)
    start, end = spike_window(journal, read_history(out / HISTORY), args.users)
    latencies, settled = (hit_latencies(keyed_from(journal, since, end)) for since in (start, start + SETTLED_S))
    peak = max(s["instances"] for s in read_jsonl(out / FORMATION))
    return {
        "label": label, "status": verdict.status, "hits": len(latencies),
        "p50_ms": 1000 * percentile(latencies, 0.50), "p95_ms": 1000 * percentile(latencies, 0.95),
        "settled_p95_ms": 1000 * percentile(settled, 0.95), "peak_instances": peak,
        **capacity_times(start, poller.rows, read_jsonl(out / AUTOSCALE), peak),
    }


def keyed_from(journal, since, until):
    """The events of the hits invoked in [since, until)."""
    keys = {e["key"] for e in journal if e["type"] == "invoke" and since <= e["time"] < until}
    return [e for e in journal if e["key"] in keys]


def median(runs, name):
    return median_or_none(run[name] for run in runs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs with and without autoscaling, each")
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--web", type=int, default=2, help="instances at start, and the autoscaler's minimum")
    parser.add_argument("--max", type=int, default=8, help="the autoscaler's maximum")
    parser.add_argument("--users", type=int, default=10, help="users outside the spike (200 in it)")
    parser.add_argument("--work-ms", type=int, default=100, help="WORK_MS of every instance")
    args = parser.parse_args(argv)
    load = LoadSpec(duration=args.duration, users=args.users, shape="spike", chaos_rate=0)
    fixed = FormationSpec(web=args.web)
    env = {**os.environ, "WORK_MS": str(args.work_ms)}
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-autoscale-"))
    runs = {"fixed": [], "autoscaled": []}
    for n in range(args.runs):
        runs["fixed"].append(measure("fixed", replace(fixed, report_dir=base / f"fixed-{n}"), load, env, args))
        runs["autoscaled"].append(measure("autoscaled", replace(fixed, autoscale=args.max,
                                                                report_dir=base / f"autoscaled-{n}"), load, env, args))
        print(json.dumps(runs["fixed"][-1]), json.dumps(runs["autoscaled"][-1]), sep="\n", flush=True)
    print(f"\n{args.runs} runs each, medians; WORK_MS={args.work_ms}, {args.web} instances at start,"
          f" autoscaled up to {args.max}; {args.users} -> 200 -> {args.users} users over {args.duration:g} s\n")
    print(f"| formation | verdicts | hits in spike | p50 ms | p95 ms | p95 ms after its first {SETTLED_S:g} s"
          " | peak instances | first up s | a new instance in rotation s | serving s | all new serving s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, group in runs.items():
        print(f"| {label} | {', '.join(sorted({r['status'] for r in group}))} | {cell(median(group, 'hits'))}"
              f" | {cell(median(group, 'p50_ms'), 0)} | {cell(median(group, 'p95_ms'), 0)}"
              f" | {cell(median(group, 'settled_p95_ms'), 0)} | {cell(median(group, 'peak_instances'))}"
              f" | {cell(median(group, 'decision_s'), 2)} | {cell(median(group, 'routable_s'), 2)}"
              f" | {cell(median(group, 'serving_s'), 2)} | {cell(median(group, 'all_serving_s'), 2)} |")
    print(f"\nreports in {base}")
    return 0 if all(r["status"] == "valid" for group in runs.values() for r in group) else 1


if __name__ == "__main__":
    sys.exit(main())
