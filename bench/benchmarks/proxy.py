"""Throughput and latency through this proxy, through nginx, and straight to one backend.

    $ python -m bench.benchmarks.proxy                       # N = 2 and 4, /healthz and /hits, 3 x 10 s per row: ~12 min
    $ python -m bench.benchmarks.proxy --instances 4 --duration 5 --reps 1 --paths /healthz
    $ python -m bench.benchmarks.proxy --profile /tmp/proxy.prof   # also: where the proxy's CPU goes
    $ python -m bench.benchmarks.proxy --variant "asyncio loop=PROXY_LOOP=asyncio"   # one more proxy row per N
    $ git archive 4e5e805 | tar -x -C /tmp/old && python -m bench.benchmarks.proxy --variant "aiohttp proxy=cwd=/tmp/old"

One run starts a redis-server, N gunicorn web instances (default settings: 2
gthread workers x 4 threads), this proxy (``PROXY_BACKENDS`` = those N, access
log on) and nginx as ``scripts/check --front nginx`` runs it
(bench.harness.frontdoor: one worker process, round-robin upstream with
keep-alive, access log on), then loads each with wrk: ``GET /healthz``, which touches no
Redis, so the rows differ by the hop alone, and ``GET /hits``, which reads the
counter from Redis. ``--variant`` adds proxy rows with other settings (or,
with ``cwd=``, another checkout's proxy), to measure one change at a time in
the same run. Rows are interleaved per repetition
so background noise spreads over all of them; figures are medians. A second
pass with one connection (``-c1``) gives the latency the hop adds at low load.
CPU per request is the proxy's (or the nginx worker's) own user+system time
over the run, from psutil. Last, a proxy reading the registry shows how soon a
new instance gets traffic and a stopped one loses it (the "within 1 s" claims).
Prints a Markdown report for BENCHMARKS.md.

wrk and nginx come from the system packages (installed with apt-get when
missing and possible); without nginx its rows are skipped with a message.
"""
import argparse
import collections
import json
import os
import pstats
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import redis
import requests

from bench.benchmarks import wrk
from bench.benchmarks.stats import median_of
from bench.harness.frontdoor import FrontDoor
from bench.harness.launch import Processes
from bench.packages import Missing, installed
from scaler.processes import free_port, wait_until
from common.schema import registry_entry

def nginx(procs, backends, folder):
    """nginx as ``scripts/check --front nginx`` runs it (bench.harness.frontdoor), in ``folder``: (port, worker pid)."""
    folder.mkdir()
    door = FrontDoor("nginx", backends, free_port(), folder).start()
    procs.keep(door.popen)
    [worker] = psutil.Process(door.popen.pid).children()
    return door.port, worker.pid


def wrk_cpu(port, path, connections, duration, pid=None):
    """One wrk run (bench.benchmarks.wrk), and the CPU µs per request of ``pid``."""
    before = psutil.Process(pid).cpu_times() if pid else None
    result = wrk.run(f"http://127.0.0.1:{port}{path}", connections, duration)
    if pid:
        after = psutil.Process(pid).cpu_times()
        cpu = (after.user - before.user) + (after.system - before.system)
        result["cpu_us"] = cpu / max(result["requests"], 1) * 1e6
    return result


def measure(targets, path, connections, duration, reps):
    """{name: median result}, the targets' runs interleaved rep by rep."""
    for port, pid in targets.values():  # warm-up: connections, pools, lazy imports
        wrk_cpu(port, path, connections, 2)
    runs = collections.defaultdict(list)
    for _ in range(reps):
        for name, (port, pid) in targets.items():
            runs[name].append(wrk_cpu(port, path, connections, duration, pid))
    return {name: median_of(results) for name, results in runs.items()}


# cProfile on the process's CPU clock, not the wall clock: on a busy machine a send()
# that wakes another process would otherwise be charged for whatever runs before the
# proxy gets a core back. Idle waits in epoll then cost nothing, as they should.
# Profiling starts on SIGUSR1, after a warm-up, so start-up imports stay out of it.
PROFILED = """
import cProfile, runpy, signal, sys, time
profiler = cProfile.Profile(time.process_time)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
try:
    runpy.run_module("proxy", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(sys.argv[1])
"""


def area_of(filename, function):
    """Which part of the proxy a profiled function belongs to."""
    if "feed_data" in function:
        return "httptools (llhttp) parsing, callbacks excluded"
    if "uvloop" in filename or "uvloop" in function or filename.endswith("asyncio/runners.py"):
        # uvloop's Cython methods are invisible to cProfile: its loop, recv() and epoll land
        # on the loop's run; a transport.write() (the send syscall) on its Python caller.
        return "uvloop: event loop, recv()"
    if "/proxy/client.py" in filename and function == "send":
        return "proxy.client Upstream.send: the send() to the backend"
    if "/proxy/request.py" in filename and function == "respond":
        return "proxy.request Request.respond: the send() to the client"
    if "aiohttp/client" in filename or "aiohttp/connector" in filename:
        return "aiohttp client (backend side)"
    if "aiohttp" in filename:
        return "aiohttp server, parser, writer, streams"
    if "/proxy/" in filename:
        return "proxy." + filename.rsplit("/", 1)[1].removesuffix(".py") + ", the rest"
    if "asyncio" in filename or "selectors" in filename or function.startswith("<method 'run' of '_contextvars"):
        return "asyncio (tasks, futures, timers)"
    return "other (builtins: os.urandom, str/bytes/list methods, json)"


def proxy(procs, backends, name, **env):
    """This proxy in front of the static ``backends``: (port, pid)."""
    launched = procs.proxy(name=name, PROXY_BACKENDS=",".join(backends), **env)
    return launched.port, launched.popen.pid


def profile(procs, backends, path, connections, duration, out):
    """Run the proxy under cProfile (CPU clock) for one load run; its CPU by area, in percent."""
    port, pid = proxy(procs, backends, "proxy-profiled", command=(sys.executable, "-c", PROFILED, out))
    wrk_cpu(port, path, connections, 2)
    os.kill(pid, signal.SIGUSR1)
    wrk_cpu(port, path, connections, duration)
    process = psutil.Process(pid)
    process.terminate()  # SIGTERM: the proxy drains and returns, and cProfile writes its file
    process.wait(timeout=30)
    areas = collections.Counter()
    for (filename, _, function), (_, _, tottime, _, _) in pstats.Stats(out).stats.items():
        areas[area_of(filename, function)] += tottime
    busy = sum(areas.values())
    return {area: 100 * t / busy for area, t in areas.most_common()}


def discovery(procs, rounds=5):
    """Seconds from an instance's registration to its first request through the proxy, and from its
    deregistration (SIGTERM) to the last request the proxy still sent it; each over ``rounds`` instances."""
    redis_url = procs.redis(procs.log_dir / "redis-discovery", name="redis-discovery").url
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    procs.web(redis_url, "discovery.0")
    port = procs.proxy(redis_url, "proxy-registry").port
    sent = []  # (time the request started, backend it went to), appended by the load threads
    stop = threading.Event()

    def load():
        with requests.Session() as session:
            while not stop.is_set():
                started = time.time()
                sent.append((started, session.get(f"http://127.0.0.1:{port}/healthz", timeout=10).headers["X-Backend"]))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    joins, leaves = [], []
    try:
        for n in range(1, rounds + 1):
            web = procs.web(redis_url, f"discovery.{n}")
            address = web.address
            registered = json.loads(client.get(registry_entry(address)))["started"]
            first = wait_until(lambda: next((t for t, b in sent if b == address), None), what=f"{address} routed")
            joins.append(first - registered)
            web.popen.terminate()  # gunicorn deregisters first, then drains
            wait_until(lambda: not client.exists(registry_entry(address)), interval=0.005, what="deregistration")
            deregistered = time.time()
            web.popen.wait(timeout=30)
            leaves.append(max([t for t, b in sent if b == address and t > deregistered], default=deregistered)
                          - deregistered)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return joins, leaves


def report(results, low, nproc, load, args, profile_areas, found):
    paths = ", ".join(f"`GET {path}`" for path in args.paths)
    lines = [f"Machine: `nproc` = {nproc}; load average {load[0]:.1f} at start, {load[1]:.1f} at the end "
             f"(a shared machine: other work ran too). Load: wrk, {paths}, {args.connections} connections, "
             f"{args.reps} x {args.duration} s per row, interleaved; medians.", ""]
    lines += ["| N | path | target | req/s | p50 ms | p99 ms | vs nginx | CPU µs/req | errors |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for (n, path), rows in results.items():
        nginx_rps = rows.get("nginx", {}).get("rps")
        for name, row in rows.items():
            ratio = f"{row['rps'] / nginx_rps:.2f}x" if nginx_rps else "-"
            cpu = f"{row['cpu_us']:.0f}" if "cpu_us" in row else "-"
            lines.append(f"| {n} | {path} | {name} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} | {ratio} | "
                         f"{cpu} | {row['errors']:.0f} |")
    if low:
        lines += ["", f"Low load (1 connection, N = {args.instances[0]}, {3 * args.reps} x 2 s per row): p50 and what "
                  "the hop adds over going direct.", "",
                  "| path | target | p50 ms | added p50 ms |", "|---|---|---:|---:|"]
        for path, rows in low.items():
            direct = rows["direct"]["p50"]
            for name, row in rows.items():
                lines.append(f"| {path} | {name} | {row['p50']:.3f} | {row['p50'] - direct:+.3f} |")
    if found:
        joins, leaves = found
        lines += ["", f"Discovery through the registry ({len(joins)} instances, 4 clients looping on the proxy): "
                  "seconds from registration to the first request routed to the new instance, and from "
                  "deregistration to the last request still sent to it.", "",
                  "| | median s | max s |", "|---|---:|---:|",
                  f"| new instance gets traffic | {statistics.median(joins):.3f} | {max(joins):.3f} |",
                  f"| stopped instance stops getting it | {statistics.median(leaves):.3f} | {max(leaves):.3f} |"]
    if profile_areas:
        lines += ["", f"Where the proxy's CPU goes (cProfile on the CPU clock, own time by area, at the largest N, "
                  f"`GET {args.paths[0]}`):", ""]
        lines += [f"- {area}: {share:.0f}%" for area, share in profile_areas.items()]
    return "\n".join(lines)


def variant(text):
    """``NAME=VAR=VALUE[,VAR=VALUE...]``: a proxy row called NAME with those settings (``cwd=DIR``: run DIR's proxy)."""
    name, _, settings = text.partition("=")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    return name, env


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=lambda s: [int(n) for n in s.split(",")], default=[2, 4])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--paths", type=lambda s: s.split(","), default=["/healthz", "/hits"])
    parser.add_argument("--variant", type=variant, action="append", default=[], metavar="NAME=VAR=VALUE,...",
                        help="one more proxy row per N, with these settings; cwd=DIR runs another checkout's proxy")
    parser.add_argument("--profile", metavar="FILE", help="also profile the proxy at the largest N, into FILE")
    args = parser.parse_args(argv)
    wrk.wrk_path()  # installed now, or exit with the reason
    try:
        has_nginx = bool(installed("nginx", "nginx"))
    except Missing as exc:
        has_nginx = False
        print(f"# {exc}: the nginx rows are skipped", file=sys.stderr)
    load_start = os.getloadavg()[0]
    results, low, areas, found = {}, {}, {}, ()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as workdir, Processes(log_dir=Path(workdir)) as procs:
        redis_url = procs.redis(procs.log_dir / "redis").url
        for n in args.instances:
            webs = [procs.web(redis_url, f"web{n}.{i}") for i in range(1, n + 1)]
            backends = [web.address for web in webs]
            targets = {"direct (1 backend)": (webs[0].port, None), "this proxy": proxy(procs, backends, f"proxy{n}")}
            for number, (name, env) in enumerate(args.variant):
                targets[name] = proxy(procs, backends, f"proxy{n}-variant{number}", **env)
            if has_nginx:
                targets["nginx"] = nginx(procs, backends, procs.log_dir / f"nginx{n}")
            print(f"# N={n}: {', '.join(targets)}", file=sys.stderr)
            for path in args.paths:
                results[n, path] = measure(targets, path, args.connections, args.duration, args.reps)
                if n == args.instances[0]:
                    # Short and many, so that the machine's other load spreads evenly over the rows.
                    rows = measure(targets, path, 1, 2, 3 * args.reps)
                    low[path] = {name.split(" (")[0]: row for name, row in rows.items()}
            if args.profile and n == args.instances[-1]:
                areas = profile(procs, backends, args.paths[0], args.connections, args.duration, args.profile)
        found = discovery(procs)
    print(report(results, low, os.cpu_count(), (load_start, os.getloadavg()[0]), args, areas, found))


if __name__ == "__main__":
    main()
