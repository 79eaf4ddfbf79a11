"""Benchmark: the price of exactly-once, keyed hits (the one Lua script) against hits without a key.

    $ .venv/bin/python -m bench.benchmarks.exactly_once                    # 5 x 10 s per row: about 5 minutes
    $ .venv/bin/python -m bench.benchmarks.exactly_once --reps 1 --duration 3
    $ .venv/bin/python -m bench.benchmarks.exactly_once --profile 10      # also: where a worker's CPU goes

Through the whole formation (scripts/check's: honcho, Redis, ``--web`` instances,
the proxy reading the registry) with ``PROXY_STAMP_KEYS=0``, so a keyless POST
stays keyless: wrk sends ``POST /hits`` each with a fresh ``<run>:<client>:<n>``
key, so the script runs whole (key lookup, INCR, key record, ledger append,
served count); then keys outside any run (``<run>-wrk...``: no ``:``, so no
ledger, as production's keys), the price of exactly-once alone; against
``POST /hits`` without a key, where the same script runs
INCR and the served count only: the app's nearest to a plain INCR. Then at
Redis alone, on the same redis-server (append-only, ``appendfsync always``),
redis-benchmark runs ``INCR`` and EVALSHA of that script keyed and keyless;
``INFO commandstats`` gives Redis's own µs per call. Rows are interleaved rep
by rep; figures are medians; the ratios are keyed over the other, one run.
With ``--profile S``, py-spy samples one web worker for S seconds under each
kind of load, and its samples (the innermost frame's file) are summed by area.
"""
import argparse
import collections
import csv
import io
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import psutil
import redis

from bench.benchmarks import wrk
from bench.benchmarks.scaling import point, start
from bench.benchmarks.stats import median_of
from bench.harness.model import FormationSpec
from bench.packages import installed
from web.hits import APPLY_ONCE
from common.schema import COUNTER, SERVED, key_record, make_key, run_ledger


def redis_commands(sha, run):
    """redis-benchmark's command lines: a plain INCR, the script keyless, the script keyed (random keys)."""
    key = make_key(run, "bench", "__rand_int__")
    return {
        "INCR": ["INCR", COUNTER],
        "EVALSHA, no key (INCR + served count)":
            ["EVALSHA", sha, "4", COUNTER, "", "", SERVED, "86400", "bench", "0", ""],
        "EVALSHA, keyed (lookup, INCR, record, ledger, served)": [
            "EVALSHA", sha, "4", COUNTER, key_record(key), run_ledger(run), SERVED, "86400", "bench", "0", key],
    }


def redis_alone(client, port, command, requests, connections):
    """One redis-benchmark run: requests/s, p99 ms, and Redis's own µs per call of the command."""
    client.config_resetstat()
    out = subprocess.run([installed("redis-benchmark", "redis-tools"), "-p", str(port), "-c", str(connections),
                          "-n", str(requests), "-r", "1000000000", "--csv", *command],
                         capture_output=True, text=True, check=True).stdout
    row = next(csv.DictReader(io.StringIO(out)))
    stats = client.info("commandstats")[f"cmdstat_{command[0].lower()}"]
    return {"rps": float(row["rps"]), "p99": float(row["p99_latency_ms"]), "usec": float(stats["usec_per_call"])}


# py-spy names a frame "function (path/inside/sys.path.py:line)".
AREAS = (("redis-py, the Redis round trip", r"\(redis/"), ("gunicorn", r"\(gunicorn/"),
         ("Flask and Werkzeug", r"\((flask|werkzeug)/"), ("the app (web/)", r"\(web/"),
         ("sockets, selectors, threads", r"\((socket|selectors|threading|ssl|queue)\.py"),
         ("json, re", r"\((json|re)/"))


def a_worker(formation):
    """The pid of one gunicorn worker of the formation: a gunicorn process whose parent is one too."""
    for proc in psutil.Process(formation.honcho.pid).children(recursive=True):
        if "gunicorn" in " ".join(proc.cmdline()) and "gunicorn" in " ".join(proc.parent().cmdline()):
            return proc.pid
    raise RuntimeError("no gunicorn worker found")


def profile(formation, seconds, connections, options, out):
    """py-spy's samples of one worker while wrk sends this kind of hit: {area: share}, and samples per second."""
    load = threading.Thread(target=wrk.run, args=(formation.proxy_url + "/hits", connections, seconds + 2),
                            kwargs=options)
    load.start()
    subprocess.run([Path(sys.executable).parent / "py-spy", "record", "-p", str(a_worker(formation)),
                    "-d", str(seconds), "-r", "250", "-f", "raw", "-o", str(out), "--nonblocking"],
                   check=True, capture_output=True)
    load.join()
    areas = collections.Counter()
    for line in Path(out).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        areas[next((name for name, pattern in AREAS if re.search(pattern, leaf)), "other")] += int(count)
    total = sum(areas.values()) or 1
    return {area: count / total for area, count in areas.most_common()}, total / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30_000, help="per redis-benchmark run")
    parser.add_argument("--profile", type=int, default=0, metavar="S", help="py-spy a worker for S s per kind")
    args = parser.parse_args(argv)
    wrk.wrk_path()
    run = f"r{uuid.uuid4().hex[:10]}"
    web = {"keyed POST /hits": {"script": wrk.KEYED, "args": [run]},
           "keyed, outside a run (no ledger)": {"script": wrk.keyed("-"), "args": [run]},
           "keyless POST /hits": {"script": wrk.KEYLESS}}
    formation_runs = {name: [] for name in web}
    redis_runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-exactly-once-") as workdir:
        # The proxy stamps no key (PROXY_STAMP_KEYS=0), so that a keyless hit stays keyless.
        spec = FormationSpec(web=args.web, workers=args.workers, hits="keyless-retried",
                             report_dir=Path(workdir) / "formation")
        formation = start(spec, WORK_MS=0)
        try:
            client = redis.Redis.from_url(formation.redis_url)
            commands = redis_commands(client.script_load(APPLY_ONCE), run)
            redis_runs = {name: [] for name in commands}
            for name, options in web.items():  # warm-up
                point(formation, args.connections, 1, path="/hits", **options)
            for rep in range(args.reps):
                for name, options in web.items():
                    formation_runs[name].append(
                        point(formation, args.connections, args.duration, path="/hits", **options))
                for name, command in commands.items():
                    redis_runs[name].append(redis_alone(client, formation.redis_port, command, args.requests,
                                                        args.connections))
                print(f"# rep {rep + 1}: " + ", ".join(f"{name} {runs[-1]['rps']:.0f}/s" for name, runs in
                                                      [*formation_runs.items(), *redis_runs.items()]), file=sys.stderr)
            profiles = {name: profile(formation, args.profile, args.connections, options, Path(workdir) / f"{i}.txt")
                        for i, (name, options) in enumerate(web.items())} if args.profile else {}
        finally:
            formation.stop()
    print(report(args, {name: median_of(runs) for name, runs in formation_runs.items()},
                 {name: median_of(runs) for name, runs in redis_runs.items()}, paired(formation_runs)))
    for name, (areas, rate) in profiles.items():
        print(f"\nWhere one worker's CPU goes, {name} (py-spy, {rate:.0f} busy samples/s of 250):\n")
        print("\n".join(f"- {area}: {share:.0%}" for area, share in areas.items()))


def paired(formation_runs):
    """{name: the median over reps of that rep's hits/s over the keyless one's}: each pair ran back to back."""
    keyless = formation_runs["keyless POST /hits"]
    return {name: statistics.median(run["rps"] / base["rps"] for run, base in zip(runs, keyless))
            for name, runs in formation_runs.items()}


def report(args, web, alone, ratios):
    keyed, keyless = web["keyed POST /hits"], web["keyless POST /hits"]
    incr = alone["INCR"]
    lines = [f"Through the formation ({args.web} instances x {args.workers} workers,"
             f" wrk {args.connections} connections,"
             f" {args.reps} x {args.duration} s, interleaved, medians):", "",
             "| hit | hits/s | p99 ms | formation's CPU, cores | CPU ms per hit | vs keyless | rep by rep |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in web.items():
        lines.append(f"| {name} | {row['rps']:.0f} | {row['p99']:.1f} | {row['cores']:.2f} |"
                     f" {1000 * row['cores'] / row['rps']:.2f} | {row['rps'] / keyless['rps']:.3f}x |"
                     f" {ratios[name]:.3f}x |")
    lines += ["", f"At Redis alone (redis-benchmark, {args.connections} connections, {args.requests:,} calls a run,"
              f" {args.reps} runs, interleaved, medians):", "",
              "| command | calls/s | p99 ms | Redis µs per call | vs INCR |", "|---|---:|---:|---:|---:|"]
    for name, row in alone.items():
        lines.append(f"| {name} | {row['rps']:.0f} | {row['p99']:.2f} | {row['usec']:.2f} |"
                     f" {row['rps'] / incr['rps']:.3f}x |")
    production = web["keyed, outside a run (no ledger)"]
    lines += ["", f"Formation: keyed / keyless = **{keyed['rps'] / keyless['rps']:.3f}x**"
              f" ({ratios['keyed POST /hits']:.3f}x rep by rep), and with a production key"
              f" **{production['rps'] / keyless['rps']:.3f}x** ({ratios['keyed, outside a run (no ledger)']:.3f}x)"
              " (goal >= 0.95).", "", "Rep by rep: the median of each rep's ratio to the keyless run just after it."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
