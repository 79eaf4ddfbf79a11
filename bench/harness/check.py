"""scripts/check: bring up a formation, hit it under chaos, check every hit, report, clean up.

    $ scripts/check --web 4 --duration 60 --chaos-rate 1 --chaos-mix kill,term,reload,freeze --seed 7
    $ scripts/check --mode seed      # a negative control: must end INVALID
    $ scripts/check --hosts          # the same across network namespace hosts (bench/hosts.py; root)
    $ scripts/check --shape spike --autoscale --duration 120   # 16 -> 200 -> 16 users, web between 4 and 8

Steps: ``honcho start`` runs redis, N web instances, the proxy and the scaler
(so ``scripts/scale`` works on it; with ``--autoscale`` the autoscaler too) on
free ports with a fresh Redis data folder; Locust runs headless through the proxy
with the chaos monkey and the consistency plugin (bench/locustfile.py); the
HTML report is written from what they left in the report folder. Exit status:
0 valid, 1 lost/duplicated/unexpected/gaps, 2 no verdict (the run itself broke).
Every process started here is stopped on the way out, also on Ctrl-C.
"""
import argparse
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.chaos.vocabulary import KILLS, is_action
from bench.harness import report
from bench.harness.formation import Formation
from bench.harness.hosts import HostsFormation, Unavailable
from bench.paths import BIN, ROOT
from bench.runfolder import (CHAOS, CSV_PREFIX, FORMATION_LOG, LIVE, LOCUST_HTML, LOCUST_LOG, REPORT_HTML, VERDICT_JSON,
                             VERDICT_TXT, read_json, read_jsonl)
from bench.verdict import render
from scaler.processes import free_port, stop_tree
from web.config import HIT_MODES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--web", type=int, default=4, help="web instances (default %(default)s)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load (default %(default)s)")
    parser.add_argument("--users", type=int, default=16, help="Locust users (default %(default)s)")
    parser.add_argument("--processes", type=int, default=0, help="Locust worker processes (0: one process)")
    parser.add_argument("--chaos-rate", type=float, default=1.0, help="chaos actions per second (0: none)")
    parser.add_argument("--chaos-mix", default="kill,term,reload,freeze,scale", help="actions, optionally weighted")
    parser.add_argument("--seed", type=int, default=1, help="seed of the chaos schedule")
    parser.add_argument("--mode", choices=HIT_MODES, default="atomic",
                        help="HIT_MODE of the web instances; seed and local are wrong on purpose")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--report-dir", type=Path, help="default: reports/<time>-<mode>")
    parser.add_argument("--shape", help="a Locust load shape from bench/shapes.py instead of steady users: spike")
    parser.add_argument("--autoscale", type=int, nargs="?", const=8, metavar="MAX",
                        help="run the autoscaler, between --web and MAX (default 8) instances")
    parser.add_argument("--redis", choices=("single", "sentinel"), default="single",
                        help="one server, or a primary, two replicas and three Sentinels (bench/harness/replicated.py)")
    parser.add_argument("--hosts", action="store_true",
                        help="one host per role, made of network namespaces (root); skipped where impossible")
    parser.add_argument("--require-hosts", action="store_true", help="--hosts, failing where it cannot run")
    args = parser.parse_args(argv)
    args.hosts = args.hosts or args.require_hosts
    if args.hosts and args.redis == "sentinel":
        parser.error("--redis sentinel runs on loopback only; --hosts with Sentinel is not built yet")
    # A random part too: two checks started in the same second must not share a folder.
    args.report_dir = args.report_dir or ROOT / "reports" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.mode}-{uuid.uuid4().hex[:6]}"
    return args


def locust_command(args, formation):
    out = args.report_dir
    command = [
        BIN / "locust", "-f", ROOT / "bench/locustfile.py", "--headless",
        "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration:g}s",
        "--host", formation.proxy_url, "--redis-url", formation.redis_url,
        # With --hosts a chaos agent runs on each web host: from the load host, no process would be local.
        "--report-dir", out, "--chaos-rate", str(0 if args.hosts else args.chaos_rate), "--chaos-mix", args.chaos_mix,
        "--chaos-seed", str(args.seed), "--csv", out / CSV_PREFIX, "--csv-full-history",
        "--html", out / LOCUST_HTML, "--stop-timeout", "10", "--only-summary",
    ]
    if args.shape:
        command += ["--shape", args.shape]
    if args.processes:
        # A port of its own: workers left over from another run must not join this master.
        port = str(free_port())
        command += ["--processes", str(args.processes), "--master-bind-port", port, "--master-port", port]
    return [str(part) for part in command]


def progress_line(args, started, out):
    """elapsed/total, rps, chaos actions, violations so far: from what the run writes as it goes."""
    elapsed = time.monotonic() - started
    live = read_json(out / LIVE, {})
    actions = [event for event in read_jsonl(out / CHAOS) if is_action(event)]
    kills = sum(1 for event in actions if event.get("action") in KILLS)
    return (f"\r{elapsed:5.0f}/{args.duration:.0f}s  {live.get('rps', 0):7.1f} rps  {len(actions)} chaos actions"
            f" ({kills} SIGKILLs)  violations so far: {live.get('lost', 0) + live.get('duplicated', 0)}   ")


class Interrupted(Exception):
    """A signal asked the check to stop: clean up and exit 130."""


class Signals:
    """Handlers only note the signal; the check's loops call ``check()`` and act, as gunicorn's arbiter does."""

    def __init__(self, *signums):
        self.received = []
        for signum in signums:
            signal.signal(signum, lambda signum, _frame: self.received.append(signum))

    def check(self):
        if self.received:
            raise Interrupted(signal.Signals(self.received[0]).name)


def run(args, signals):
    args.report_dir.mkdir(parents=True, exist_ok=True)
    out = args.report_dir
    formation = HostsFormation(args) if args.hosts else Formation(args)
    locust = None
    try:
        print(f"factor6 check: {args.web} web instances in {args.mode} mode, {args.duration:.0f}s,"
              f" chaos {args.chaos_rate}/s ({args.chaos_mix}), seed {args.seed}; report in {out}")
        formation.start(abort=signals.check)
        command = locust_command(args, formation)
        with open(out / LOCUST_LOG, "wb") as log:
            locust = subprocess.Popen(formation.wrap(command), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        started = time.monotonic()
        while locust.poll() is None:
            signals.check()
            if sys.stdout.isatty():
                print(progress_line(args, started, out), end="", flush=True)
            time.sleep(1)
        print(progress_line(args, started, out))
    finally:
        # Signals arriving now are noted and ignored: cleanup always runs to its end.
        if locust:
            stop_tree(locust.pid)
        formation.stop()
    verdict = render.from_json(read_json(out / VERDICT_JSON))
    print((out / VERDICT_TXT).read_text() if (out / VERDICT_TXT).exists() else render.headline(verdict))
    report.write(out)
    print(f"report: {out / REPORT_HTML}")
    return verdict.exit_code


def main(argv=None):
    args = parse_args(argv)
    signals = Signals(signal.SIGTERM, signal.SIGINT)  # clean up on SIGTERM exactly as on Ctrl-C
    try:
        return run(args, signals)
    except Interrupted as exc:
        print(f"\ninterrupted by {exc}: formation and Locust stopped")
        return 130
    except Unavailable as exc:
        print(f"\n--hosts skipped: {exc}")
        return 2 if args.require_hosts else 0
    except TimeoutError as exc:
        print(f"\nthe formation did not come up: {exc}; see {args.report_dir / FORMATION_LOG}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
