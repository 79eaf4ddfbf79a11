"""How long a probe takes, start to verdict, and how many writes and reads it makes: the median of a few runs.

    $ python -m bench.benchmarks.probe examples/stateless-redis --runs 3 --duration 5
    examples/stateless-redis, --duration 5, 3 runs: median 21.4 s start to verdict (wall 24.9 s), 61 writes, 130 reads; VALID x3

Each run is a whole ``python -m bench.probe`` (interpreter start, instances,
chaos, final reads, report); "start to verdict" is the probe's own count, from
its first instance starting to its verdict; "wall" adds the interpreter's
start and the report's drawing. BENCHMARKS.md quotes it.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.paths import ROOT


def one_run(app_dir, duration, seed):
    with tempfile.TemporaryDirectory(prefix="probe-benchmark-") as out:
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "bench.probe", str(app_dir), "--duration", str(duration), "--seed",
                        str(seed), "--report-dir", out], cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
        wall = time.monotonic() - began
        data = json.loads((Path(out) / "probe.json").read_text())
    return {"seconds": data["seconds"], "wall": wall, "writes": data["writes"], "reads": data["reads"],
            "status": data["status"]}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("app_dir", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    args = parser.parse_args(argv)
    runs = [one_run(args.app_dir, args.duration, seed) for seed in range(1, args.runs + 1)]
    median = {key: statistics.median(run[key] for run in runs) for key in ("seconds", "wall", "writes", "reads")}
    statuses = ", ".join(sorted({run["status"].upper().replace("UNKNOWN", "NO VERDICT") for run in runs}))
    print(f"{args.app_dir}, --duration {args.duration:g}, {args.runs} runs: median {median['seconds']:.1f} s start to"
          f" verdict (wall {median['wall']:.1f} s), {median['writes']:.0f} writes, {median['reads']:.0f} reads;"
          f" {statuses}")
    print("runs: " + "; ".join(f"{run['seconds']:.1f} s, {run['writes']} writes, {run['reads']} reads"
                               for run in runs))


if __name__ == "__main__":
    main()
