"""Benchmark: what killing the Redis server every few seconds costs, per persistence setting, in one run.

    $ .venv/bin/python -m bench.benchmarks.backing --duration 120 --web 4 --every 5

Runs scripts/check six times back to back on the same machine: for each
``REDIS_PERSISTENCE`` (always, everysec, none), once without chaos and once with
``--chaos-mix redis-kill`` at one kill every ``--every`` seconds. Prints a Markdown
table: acknowledged hits lost (keys the checker found lost), numbers acknowledged or
applied to more than one key, client-visible failures after every retry (hits ending fail or
unknown), the recovery per kill (server answering again to the first hit served
through the proxy: median and worst), and the throughput without chaos as
acknowledged hits per second, relative to ``none`` (a ratio within one run, since
the machine is shared).
"""
import argparse
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.benchmarks.stats import cell, median_or_none
from bench.harness.report import recovery_times
from bench.harness.model import FormationSpec, LoadSpec
from bench.harness.options import scripts_check
from bench.runfolder import CHAOS, VERDICT_JSON, read_json, read_jsonl
from bench.verdict import render

SETTINGS = ("always", "everysec", "none")


def measure(formation, load):
    subprocess.run(scripts_check(formation, load), check=False, stdout=subprocess.DEVNULL)
    return figures(formation.report_dir)


def figures(out):
    """One run's figures, from its folder. A hit can be lost for two reasons (not in the ledger, above the
    final counter), so lost hits are counted by key, reissued numbers by number."""
    verdict = render.from_json(read_json(out / VERDICT_JSON))
    outcomes = verdict.stats.get("outcomes", {})
    recoveries = recovery_times(read_jsonl(out / CHAOS)).get("redis-kill", [])
    reissued = {item["number"] for item in verdict.duplicated if "keys" in item and "number" in item}
    return {"status": verdict.status, "ok": verdict.ok, "hits": verdict.stats.get("operations", 0),
            "lost": len({item["key"] for item in verdict.lost if "key" in item}), "duplicated": len(reissued),
            "client_failures": outcomes.get("fail", 0) + outcomes.get("info", 0),
            "kills": len(recoveries), "recovery_median_s": median_or_none(recoveries),
            "recovery_worst_s": max(recoveries, default=None)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--web", type=int, default=4)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between redis-kills")
    parser.add_argument("--users", type=int, default=16)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="factor6-bench-backing-"))
    quiet = LoadSpec(duration=args.duration, users=args.users, chaos_rate=0)
    kills = replace(quiet, chaos_rate=1 / args.every, chaos_mix="redis-kill")
    formations = {(p, name): FormationSpec(web=args.web, redis_persistence=p, report_dir=base / f"{name}-{p}")
                  for p in SETTINGS for name in ("calm", "kill")}
    calm = {p: measure(formations[p, "calm"], quiet) for p in SETTINGS}
    chaos = {p: measure(formations[p, "kill"], kills) for p in SETTINGS}
    print("| persistence | verdict under kills | redis-kills | acknowledged hits lost | numbers reissued |"
          " client-visible failures | recovery median s | recovery worst s | hits/s without chaos | vs none |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in SETTINGS:
        r, rate = chaos[p], calm[p]["ok"] / args.duration
        print(f"| {p} | {r['status']} | {r['kills']} | {r['lost']} | {r['duplicated']} | {r['client_failures']}"
              f" | {cell(r['recovery_median_s'], 3)} | {cell(r['recovery_worst_s'], 3)} | {rate:.0f}"
              f" | {rate / max(1, calm['none']['ok']) * args.duration:.2f} |")
    print(f"\nreports in {base}")
    return 0 if chaos["always"]["status"] == "valid" and chaos["none"]["status"] == "invalid" else 1


if __name__ == "__main__":
    sys.exit(main())
