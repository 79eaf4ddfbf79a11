"""Benchmark of the consistency checker on a synthetic run of a million hits.

Times ``bench.checker.check`` on a generated history and ledger, streamed as
the command line streams them, and the whole ``python -m bench.verdict`` on
journal files and a ledger file. Each measurement runs in a fresh process;
the table gives the median wall time of three and the largest peak RSS, as
markdown rows for BENCHMARKS.md. Goal: at most 10 s and 1 GB for 1,000,000.

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
from typing import Iterator

from bench.paths import ROOT
from bench.verdict import __main__ as check_cli
from bench.verdict.checker import check

RUN = "bench"
CLIENTS = 16
COUNTER_START = 1_000
# A run under chaos: mostly acknowledged, some failed, some unknown either way.
MIX = [("ok", 0.97), ("fail", 0.01), ("info-applied", 0.005), ("info-not-applied", 0.005),
       ("pending-applied", 0.005), ("pending-not-applied", 0.005)]


def synthetic_run(ops: int, seed: int = 6) -> tuple[Iterator[dict], Iterator[dict], int, int]:
    """A clean run: a history and a ledger as generators, and the counter's start and end."""
    rng = random.Random(seed)
    outcomes = rng.choices([name for name, _ in MIX], [weight for _, weight in MIX], k=ops)
    applications = sum(outcome in ("ok", "info-applied", "pending-applied") for outcome in outcomes)

    def history() -> Iterator[dict]:
        number = COUNTER_START
        for i, outcome in enumerate(outcomes):
            key, process, t = f"{RUN}:c{i % CLIENTS}:{i}", f"c{i % CLIENTS}", 1.7e9 + i / 1000
            yield {"type": "invoke", "key": key, "time": t, "process": process}
            number += outcome in ("ok", "info-applied", "pending-applied")
            if outcome == "ok":
                yield {"type": "ok", "key": key, "time": t + 0.0005, "number": number, "process": process}
            elif not outcome.startswith("pending"):
                yield {"type": outcome.partition("-")[0], "key": key, "time": t + 0.0005, "process": process}

    def ledger() -> Iterator[dict]:
        number = COUNTER_START
        for i, outcome in enumerate(outcomes):
            if outcome in ("ok", "info-applied", "pending-applied"):
                number += 1
                yield {"key": f"{RUN}:c{i % CLIENTS}:{i}", "number": number,
                       "instance": f"web.{i % 4 + 1}", "time": 1.7e9 + i / 1000 + 0.0002}

    return history(), ledger(), COUNTER_START, COUNTER_START + applications


def write_files(ops: int, directory: Path) -> list[str]:
    """The synthetic run as the harness leaves it: one journal per client, and a ledger file."""
    history, ledger, start, end = synthetic_run(ops)
    (directory / "journals").mkdir()
    with contextlib.ExitStack() as stack:
        journals = [stack.enter_context(open(directory / f"journals/c{client}.jsonl", "w"))
                    for client in range(CLIENTS)]
        for event in history:
            journals[int(event["process"][1:])].write(json.dumps(event) + "\n")
    with open(directory / "ledger.json", "w") as file:
        json.dump({"ledger": list(ledger), "counter_start": start, "counter_end": end}, file)
    return ["--journal", str(directory / "journals/*.jsonl"), "--run", RUN,
            "--ledger-file", str(directory / "ledger.json")]


def measure(kind: str, ops: int, cli_args: list[str]) -> dict:
    """One measurement, in this (fresh) process."""
    if kind == "check":
        history, ledger, start, end = synthetic_run(ops)
        began = time.perf_counter()
        deque(history, maxlen=0), deque(ledger, maxlen=0)
        generating = time.perf_counter() - began
        history, ledger, start, end = synthetic_run(ops)
        began = time.perf_counter()
        verdict = check(history, ledger, start, end)
        wall = time.perf_counter() - began
        assert verdict.valid and not verdict.errors and verdict.stats["operations"] == ops, verdict.counts
    else:
        generating = 0.0
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            status = check_cli.main(cli_args)
        wall = time.perf_counter() - began
        assert status == 0, status
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux counts it in KiB
    return {"wall": wall, "generating": generating, "rss": rss}


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
            rss = max(run["rss"] for run in runs)
            rows.append(f"| {what} | {args.ops:,} | {wall:.1f} s | {rss / 2**20:,.0f} MiB |")
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, median of {args.repeat}\n")
    print("| what | operations | wall time | peak RSS |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
