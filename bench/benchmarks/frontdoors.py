"""Benchmark: front doors under chaos, one table of verdicts: who loses or duplicates hits, and what clients see.

    $ .venv/bin/python -m bench.benchmarks.frontdoors                   # 5 front doors x 3 kinds of hit, 30 s each
    $ .venv/bin/python -m bench.benchmarks.frontdoors --duration 10 --fronts factor6,nginx --hits keyless

Each cell is one ``scripts/check --front F --hits K``: the same formation
(``--web`` instances), the same seeded chaos (kill and freeze at ``--rate``)
and the same Locust users, through one front door (bench.harness.frontdoor;
nginx and HAProxy are installed with apt-get when missing) with one kind of
hit: ``keyed`` (POST /hits with a key, retried by the client), ``keyless``
(POST /hits without one, tried once) and ``page`` (the seed's GET /, tried
once). ``PROXY_TIMEOUT`` (``--timeout``, 2 s, under the 3 s freeze) is every
front door's response timeout, so a frozen worker makes each one time out and
apply its own retry rule. Cells run kind by kind, the front doors in turn.

Columns: the verdict; lost and duplicated hits as the checker proves them (a
duplicated counter counts its excess); "counted, not acknowledged": how far
the counter moved past the hits acknowledged, which holds applied hits whose
client saw a failure and any duplicates those failures hide; client-visible
failures (fail or unknown after every try; "cut" are hits the stop interrupted).
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.benchmarks.chaos import measure_cost
from bench.benchmarks.stats import cell
from bench.harness.frontdoor import FRONTS
from bench.harness.model import FormationSpec, LoadSpec
from bench.runfolder import VERDICT_JSON, read_json
from bench.verdict import render

KINDS = ("keyed", "keyless", "page")


def counted(out):
    """(duplicated hits, counter moved past the acknowledged) from a run folder's verdict."""
    verdict = render.from_json(read_json(out / VERDICT_JSON))
    duplicated = sum(item.get("excess", 1) for item in verdict.duplicated)
    stats = verdict.stats
    if stats.get("counter_end") is None or stats.get("counter_start") is None:
        return duplicated, None
    return duplicated, stats["counter_end"] - stats["counter_start"] - verdict.ok


def table(rows):
    lines = ["| hits | front door | verdict | acknowledged | lost | duplicated | counted, not acknowledged |"
             " client-visible failures | cut | p99 ms |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['kind']} | {row['front']} | {row['status']} | {row['ok']} | {row['lost']} |"
                     f" {row['duplicated']} | {cell(row['unacknowledged'])} | {row['client_failures']} |"
                     f" {row['cut_at_stop']} | {cell(row['p99_ms'], 0)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fronts", default=",".join(FRONTS), help="comma-separated, of: " + ", ".join(FRONTS))
    parser.add_argument("--hits", default=",".join(KINDS), help="comma-separated, of: " + ", ".join(KINDS))
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--web", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1.0, help="chaos actions per second")
    parser.add_argument("--mix", default="kill,freeze")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", default="2", help="PROXY_TIMEOUT of every front door, seconds")
    args = parser.parse_args(argv)
    os.environ["PROXY_TIMEOUT"] = args.timeout  # scripts/check hands it to the proxy and the generated configs
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-frontdoors-"))
    print(f"# reports in {base}", file=sys.stderr)
    load = LoadSpec(duration=args.duration, chaos_rate=args.rate, chaos_mix=args.mix, seed=args.seed)
    rows = []
    for kind in args.hits.split(","):
        for front in args.fronts.split(","):
            out = base / f"{kind}-{front}"
            row = measure_cost(front, FormationSpec(front=front, hits=kind, web=args.web, report_dir=out), load)
            verdict = render.from_json(read_json(out / VERDICT_JSON))
            row.update(kind=kind, front=front, ok=verdict.ok, status=render.headline(verdict))
            row["duplicated"], row["unacknowledged"] = counted(out)
            print(f"# {kind} via {front}: {row['status']}", file=sys.stderr)
            rows.append(row)
    print(f"{len(args.fronts.split(','))} front doors, {args.web} web instances,"
          f" chaos {args.rate:g}/s ({args.mix}, seed {args.seed}),"
          f" {args.duration:g} s per cell, PROXY_TIMEOUT={args.timeout}; reports in {base}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
