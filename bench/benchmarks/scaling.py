"""Benchmark: the scaling curve, hits/s and p99 for N = 1, 2, 4, 8, 16 instances, I/O-bound and CPU-bound.

    $ .venv/bin/python -m bench.benchmarks.scaling                     # 3 x 15 s per point: about 12 minutes
    $ .venv/bin/python -m bench.benchmarks.scaling --instances 1,2 --reps 1 --duration 3 --plot /tmp/s.png

Each point is a whole formation as ``scripts/check`` starts it (honcho: Redis,
N web instances of ``--workers`` gthread workers x ``--threads``, the proxy
reading the registry, the scaler), all of them up side by side for the whole
run: N instances with ``WORK_MS=--work-ms``, where each hit waits as for a
database (I/O-bound: an instance's capacity is its threads, not the machine's
cores), and N with ``WORK_MS=0``, where a hit only burns CPU. wrk sends the
seed's ``GET /`` (a hit) through the proxy with one connection per thread of
the N instances, so each N is loaded alike. Points are interleaved rep by rep,
figures are medians. Efficiency is hits/s at N over N times hits/s at 1. The
formation's CPU (honcho's whole tree; psutil) over the wall time says how many
of the machine's cores its demand took, against ``nproc``: the ceiling.
Prints a Markdown table for BENCHMARKS.md and draws ``--plot``.
"""
import argparse
import collections
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from bench.benchmarks import wrk
from bench.benchmarks.stats import cell, median_of
from bench.harness.formation import HonchoFormation
from bench.harness.model import FormationSpec
from bench.paths import ROOT


@contextmanager
def environ(**settings):
    """os.environ with these settings, which Formation.spawn hands to every process it starts."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update({name: str(value) for name, value in settings.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


def cpu_seconds(pids):
    """User + system CPU seconds of these processes and their children, now."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def start(spec, **settings):
    """The formation ``spec`` describes (bench.harness.model), started, with these other settings in its environment."""
    spec.report_dir.mkdir(parents=True)
    with environ(**settings):  # honcho hands its own environment to every process it starts
        formation = HonchoFormation(spec)
        try:
            formation.start()
        except BaseException:
            formation.stop()
            raise
    return formation


def point(formation, connections, duration, **wrk_options):
    """One wrk run through the formation's proxy, plus the cores the whole formation used meanwhile."""
    pids = [formation.honcho.pid]
    before, started = cpu_seconds(pids), time.monotonic()
    result = wrk.run(formation.proxy_url + wrk_options.pop("path", "/"), connections, duration, **wrk_options)
    result["cores"] = (cpu_seconds(pids) - before) / (time.monotonic() - started)
    return result


def plot(curves, path, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.2))
    for label, rows in curves.items():
        ns = sorted(rows)
        base = rows[ns[0]]["rps"] / ns[0]
        line, = left.plot(ns, [rows[n]["rps"] for n in ns], "o-", label=label)
        left.plot(ns, [base * n for n in ns], ":", color=line.get_color(), label=f"{label}: linear")
        middle.plot(ns, [rows[n]["rps"] / (base * n) for n in ns], "o-", label=label)
        right.plot(ns, [rows[n]["p99"] for n in ns], "o-", label=label)
    ceiling = max(max(row["rps"] for row in rows.values()) for label, rows in curves.items() if "CPU" in label)
    left.axhline(ceiling, color="grey", lw=0.8, ls="--", label=f"ceiling: the most hits/s seen, {ceiling:.0f}")
    left.set(xscale="log", yscale="log", xlabel="web instances N", ylabel="hits/s", title="Throughput")
    middle.set(xscale="log", xlabel="web instances N", ylabel="hits/s at N / (N x hits/s at 1)", ylim=(0, 1.15),
               title="Efficiency against linear")
    middle.axhline(0.9, color="grey", lw=0.8, ls="--")
    right.set(xscale="log", yscale="log", xlabel="web instances N", ylabel="p99 ms", title="p99 latency")
    for axes in (left, middle, right):
        ns = sorted(next(iter(curves.values())))
        axes.set_xticks(ns, labels=[str(n) for n in ns])
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    fig.suptitle(f"factor6 on {os.cpu_count()} cores: GET / through this proxy, {args.workers}x{args.threads} threads"
                 f" per instance, one connection per thread", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def report(curves, args, load):
    lines = [f"Machine: `nproc` = {os.cpu_count()}; load average {load[0]:.1f} at start, {load[1]:.1f} at the end.",
             "", "| hit | N | hits/s | p99 ms | efficiency | formation's CPU, cores | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, rows in curves.items():
        base = rows[min(rows)]["rps"] / min(rows)
        for n, row in sorted(rows.items()):
            lines.append(f"| {label} | {n} | {row['rps']:.0f} | {cell(row['p99'])} | {row['rps'] / (base * n):.2f} |"
                         f" {row['cores']:.2f} | {row['errors']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=lambda s: [int(n) for n in s.split(",")], default=[1, 2, 4, 8, 16])
    parser.add_argument("--work-ms", type=int, default=1000, help="the I/O-bound hit's wait")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--plot", default=str(ROOT / "docs/scaling.png"))
    args = parser.parse_args(argv)
    wrk.wrk_path()
    kinds = {f"I/O-bound (WORK_MS={args.work_ms})": args.work_ms, "CPU-bound (WORK_MS=0)": 0}
    load_start = os.getloadavg()[0]
    runs = collections.defaultdict(list)
    formations = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as workdir:
        try:
            for label, work_ms in kinds.items():
                for n in args.instances:
                    print(f"# starting {label} N={n}", file=sys.stderr)
                    spec = FormationSpec(web=n, workers=args.workers, report_dir=Path(workdir) / f"{work_ms}-{n}")
                    formations[label, n] = start(spec, WORK_MS=work_ms, WEB_THREADS=args.threads)
            for (label, n), formation in formations.items():  # warm-up: pools, lazy imports
                point(formation, n * args.workers * args.threads, 1)
            for rep in range(args.reps):
                for (label, n), formation in formations.items():
                    runs[label, n].append(point(formation, n * args.workers * args.threads, args.duration))
                    print(f"# rep {rep + 1} {label} N={n}: {runs[label, n][-1]['rps']:.0f} hits/s,"
                          f" {runs[label, n][-1]['cores']:.2f} cores", file=sys.stderr)
        finally:
            for formation in formations.values():
                formation.stop()
    curves = collections.defaultdict(dict)
    for (label, n), results in runs.items():
        curves[label][n] = median_of(results)
    plot(curves, args.plot, args)
    print(report(curves, args, (load_start, os.getloadavg()[0])))
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
