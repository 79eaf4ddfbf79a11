"""Benchmark of the consistency checker on a synthetic run of a million hits.

Times ``bench.checker.check`` on a generated history and ledger, streamed as
the command line streams them, and the whole ``python -m bench.verdict`` on
journal files and a ledger file. Each measurement runs in a fresh process;
the table gives the median wall and CPU times of three and the largest peak
RSS, as markdown rows for BENCHMARKS.md. Goal: at most 10 s and 1 GB for 1,000,000.

    $ .venv/bin/python -m bench.benchmarks.checker
    $ .venv/bin/python -m bench.benchmarks.checker --ops 10000 --repeat 1
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from bench.paths import ROOT
from bench.verdict import __main__ as check_cli
from bench.verdict.checker import check
from bench.verdict.synthetic import SyntheticRun

RUN = "bench"
CLIENTS = 16
COUNTER_START = 1_000
# A run under chaos: mostly acknowledged, some failed, some unknown either way.
MIX = [("ok", 0.97), ("fail", 0.01), ("info-applied", 0.005), ("info-not-applied", 0.005),
       ("pending-applied", 0.005), ("pending-not-applied", 0.005)]


def synthetic_run(ops: int, seed: int = 6) -> SyntheticRun:
    """A clean run of ``ops`` hits with the chaos-like MIX of outcomes."""
    rng = random.Random(seed)
    outcomes = rng.choices([name for name, _ in MIX], [weight for _, weight in MIX], k=ops)
    return SyntheticRun(RUN, outcomes, counter_start=COUNTER_START, clients=CLIENTS)


def write_files(ops: int, directory: Path) -> list[str]:
    """The synthetic run as the harness leaves it: one journal per client, and a ledger file."""
    run = synthetic_run(ops)
    (directory / "journals").mkdir()
    with contextlib.ExitStack() as stack:
        journals = [stack.enter_context(open(directory / f"journals/c{client}.jsonl", "w"))
                    for client in range(CLIENTS)]
        for event in run.history():
            journals[int(event["process"][1:])].write(json.dumps(event) + "\n")
    with open(directory / "ledger.json", "w") as file:
        json.dump({"ledger": list(run.ledger()), "counter_start": run.counter_start, "counter_end": run.counter_end}, file)
    return ["--journal", str(directory / "journals/*.jsonl"), "--run", RUN,
            "--ledger-file", str(directory / "ledger.json")]


def measure(kind: str, ops: int, cli_args: list[str]) -> dict:
    """One measurement, in this (fresh) process."""
    if kind == "check":
        run = synthetic_run(ops)
        began = time.perf_counter()
        deque(run.history(), maxlen=0), deque(run.ledger(), maxlen=0)
        generating = time.perf_counter() - began
        began = time.perf_counter()
        verdict = check(run.history(), run.ledger(), run.counter_start, run.counter_end)
        wall = time.perf_counter() - began
        assert verdict.valid and not verdict.errors and verdict.stats["operations"] == ops, verdict.counts
    else:
        generating = 0.0
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            status = check_cli.main(cli_args)
        wall = time.perf_counter() - began
        assert status == 0, status
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of the whole process, generating, imports and start included: on a shared machine wall time
    # also counts other jobs' turns, CPU time much less so.
    return {"wall": wall, "generating": generating, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss * 1024}  # Linux counts it in KiB


def in_fresh_process(kind: str, ops: int, cli_args: list[str]) -> dict:
    command = [sys.executable, "-m", "bench.benchmarks.checker", "--ops", str(ops), "--measure", kind, *cli_args]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    # Internal: one measurement, run by the parent in a fresh child process.
    parser.add_argument("--measure", choices=["check", "cli"], help=argparse.SUPPRESS)
    args, cli_args = parser.parse_known_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.ops, cli_args)))
        return
    with tempfile.TemporaryDirectory() as directory:
        cli_args = write_files(args.ops, Path(directory))
        rows = []
        for kind, what in [
            ("check", "`check()` on streamed events"),
            ("cli", f"`python -m bench.verdict` (its `main()`), {CLIENTS} journal files + ledger file"),
        ]:
            runs = [in_fresh_process(kind, args.ops, cli_args) for _ in range(args.repeat)]
            wall = statistics.median(run["wall"] for run in runs)
            generating = statistics.median(run["generating"] for run in runs)
            if generating:
                what += f" (of which {generating:.1f} s generating them)"
            cpu = statistics.median(run["cpu"] for run in runs)
            rss = max(run["rss"] for run in runs)
            rows.append(f"| {what} | {args.ops:,} | {wall:.1f} s | {cpu:.1f} s | {rss / 2**20:,.0f} MiB |")
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, median of {args.repeat},"
          f" load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| what | operations | wall time | CPU time | peak RSS |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
