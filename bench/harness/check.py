"""scripts/check: bring up a formation, hit it under chaos, check every hit, report, clean up.

    $ scripts/check --web 4 --duration 60 --chaos-rate 1 --chaos-mix kill,term,reload,freeze --seed 7
    $ scripts/check --mode seed      # a negative control: must end INVALID
    $ scripts/check --chaos-mix kill,redis-kill,redis-freeze --redis-persistence none   # another one
    $ scripts/check --hosts          # the same across network namespace hosts (bench/hosts.py; root)
    $ scripts/check --shape spike --autoscale --duration 120   # 16 -> 200 -> 16 users, web between 4 and 8
    $ scripts/check --workload session --session-store memory  # a negative control: visitors' sessions vanish
    $ scripts/check --workload hits,upload --scratch keep      # another: uploads kept on one process's disk
    $ scripts/check --workload session --session-store memory --proxy-sticky --workers 1   # pinned: hidden until chaos
    $ scripts/check --front nginx --chaos-mix kill,freeze --hits keyless   # another front door (frontdoor.py)

Steps: ``honcho start`` runs redis, N web instances, the proxy and the scaler
(so ``scripts/scale`` works on it; with ``--autoscale`` the autoscaler too) on
free ports with a fresh Redis data folder; Locust runs headless through the proxy
with the chaos monkey and the consistency plugin (bench/locustfile.py); the
HTML report is written from what they left in the report folder. Exit status:
0 valid, 1 lost/duplicated/unexpected/gaps, 2 no verdict (the run itself broke).
Every process started here is stopped on the way out, also on Ctrl-C.
"""
import json
import signal
import sys
import time
from pathlib import Path

from backing.config import PERSISTENCE
from bench.arguments import HIT_KINDS, OneLineParser, chaos_mix, new_run_folder, number, share, writable_folder
from bench.chaos.network import DEFAULT_PARTITIONS, Refused
from bench.chaos.vocabulary import ACTIONS, KILLS, is_action, network_refusal, parse_mix
from bench.harness.formation import Formation
from bench.harness.frontdoor import FRONTS
from bench.packages import Missing
from bench.harness.hosts import HostsFormation, Unavailable
from bench.harness.launch import start
from bench.paths import BIN, ROOT
from bench.runfolder import (CHAOS, CHECK, CSV_PREFIX, FORMATION_LOG, LIVE, LOCUST_HTML, LOCUST_LOG, REPORT_HTML,
                             VERDICT_JSON, VERDICT_TXT, read_json, read_jsonl)
from bench.verdict import render
from bench.verdict.workloads import WORKLOADS
from bench.verdict.workloads import parse as parse_workloads
from scaler.processes import free_port, stop_tree
from web.config import HIT_MODES, SCRATCH_MODES, SESSION_STORES

LOCUST_STOP_TIMEOUT = 10  # seconds Locust gives its users to finish after the run time


def parse_args(argv=None):
    """The check's settings; a bad value ends here, in one line with exit status 2, before anything starts."""
    parser = OneLineParser(prog="scripts/check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--web", type=number(int, least=1, hint=" (a check of no instances proves nothing)"),
                        default=4, help="web instances (default %(default)s)")
    parser.add_argument("--duration", type=number(float, above=0), default=30,
                        help="seconds of load (default %(default)s)")
    parser.add_argument("--users", type=number(int, least=1), default=16, help="Locust users (default %(default)s)")
    parser.add_argument("--processes", type=number(int, least=0), default=0,
                        help="Locust worker processes (0: one process)")
    parser.add_argument("--chaos-rate", type=number(float, least=0, hint=" (0: no chaos)"), default=1.0,
                        help="chaos actions per second (0: none)")
    parser.add_argument("--chaos-mix", type=chaos_mix, default="kill,term,reload,freeze,scale",
                        help=f"actions, optionally weighted, of {', '.join(ACTIONS)}")
    parser.add_argument("--seed", type=int, default=1, help="seed of the chaos schedule")
    parser.add_argument("--mode", choices=HIT_MODES, default="atomic",
                        help="HIT_MODE of the web instances; seed and local are wrong on purpose")
    parser.add_argument("--workers", type=number(int, least=1), default=2, help="gunicorn workers per instance")
    parser.add_argument("--min-success", type=share, default=0.5,
                        help="least share of tries that must succeed, else no verdict (default %(default)s)")
    parser.add_argument("--report-dir", type=writable_folder, help="default: reports/<time>-<mode>-<random>")
    parser.add_argument("--redis-persistence", choices=PERSISTENCE, default="always",
                        help="the formation's REDIS_PERSISTENCE; none forgets on a restart (wrong on purpose)")
    parser.add_argument("--shape", help="a Locust load shape from bench/shapes.py instead of steady users: spike")
    parser.add_argument("--autoscale", type=number(int, least=1), nargs="?", const=8, metavar="MAX",
                        help="run the autoscaler, between --web and MAX (default 8) instances")
    parser.add_argument("--redis", choices=("single", "sentinel"), default="single",
                        help="one server, or a primary, two replicas and three Sentinels (bench/harness/replicated.py)")
    parser.add_argument("--hosts", action="store_true",
                        help="one host per role, made of network namespaces (root); skipped where impossible")
    parser.add_argument("--require-hosts", action="store_true", help="--hosts, failing where it cannot run")
    parser.add_argument("--fault-s", type=number(float, above=0), default=5.0,
                        help="seconds a network fault lasts (--hosts)")
    parser.add_argument("--partitions", default=DEFAULT_PARTITIONS, help="host pairs a partition cuts (--hosts)")
    parser.add_argument("--workload", default="hits",
                        help=f"comma-separated workloads to run and check: {', '.join(WORKLOADS)} (default %(default)s)")
    parser.add_argument("--session-store", choices=SESSION_STORES, default="redis",
                        help="SESSION_STORE of the web instances; memory is wrong on purpose")
    parser.add_argument("--scratch", choices=SCRATCH_MODES, default="delete",
                        help="SCRATCH of the web instances; keep is wrong on purpose")
    parser.add_argument("--upload-size", default="1M", help="bytes per upload of the upload workload: 512K, 10M ...")
    parser.add_argument("--proxy-sticky", action="store_true",
                        help="the proxy pins each visitor to one instance by a cookie (PROXY_STICKY=cookie)")
    parser.add_argument("--front", choices=FRONTS, default="factor6",
                        help="the front door: this proxy, or nginx or HAProxy over fixed ports (no --autoscale)")
    parser.add_argument("--hits", choices=HIT_KINDS, default="keyed",
                        help="keyed (POST /hits with a key, retried), keyless (without, once), keyless-retried"
                             " (without, retried, and the proxy stamps no key: wrong on purpose) or page (GET /, once)")
    args = parser.parse_args(argv)
    if args.front != "factor6" and (args.autoscale or args.hosts or args.require_hosts):
        parser.error(f"--front {args.front} reads a static list of instances: no --autoscale, no --hosts")
    if args.front != "factor6" and args.proxy_sticky:
        parser.error(f"--proxy-sticky is this proxy's setting; --front {args.front} would ignore it")
    try:
        args.workload = ",".join(parse_workloads(args.workload))
    except ValueError as exc:
        parser.error(f"--workload: {exc}")
    args.hosts = args.hosts or args.require_hosts
    if args.hosts and args.redis == "sentinel":
        parser.error("--redis sentinel runs on loopback only; --hosts with Sentinel is not built yet")
    refusal = not args.hosts and network_refusal(parse_mix(args.chaos_mix))
    if refusal:
        parser.error(refusal)
    args.report_dir = args.report_dir or new_run_folder(parser, args.mode)
    return args


def locust_deadline(args):
    """Seconds Locust may take in all: the run, its stop timeout, the journal wait, and a minute to conclude."""
    return args.duration + LOCUST_STOP_TIMEOUT + 30 + 60


def locust_reason(out):
    """Why a Locust that wrote no verdict stopped: its first error line, else its last line."""
    lines = [line.strip() for line in (out / LOCUST_LOG).read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "/ERROR/" in line or line.startswith(("factor6:", "locust: error"))]
    return (errors or lines or ["(no output)"])[0]


def locust_command(args, formation):
    out = args.report_dir
    command = [
        BIN / "locust", "-f", ROOT / "bench/locustfile.py", "--headless",
        "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration:g}s",
        "--host", formation.proxy_url, "--redis-url", formation.redis_url,
        # With --hosts a chaos agent runs on each web host: from the load host, no process would be local.
        "--report-dir", out, "--chaos-rate", str(0 if args.hosts else args.chaos_rate), "--chaos-mix", args.chaos_mix,
        "--chaos-seed", str(args.seed), "--csv", out / CSV_PREFIX, "--csv-full-history",
        "--html", out / LOCUST_HTML, "--stop-timeout", str(LOCUST_STOP_TIMEOUT), "--only-summary",
        "--min-success", str(args.min_success),
        "--workload", args.workload, "--upload-size", args.upload_size,
        "--hits", args.hits,
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
            f" ({kills} SIGKILLs)  violations so far:"
            f" {live.get('lost', 0) + live.get('duplicated', 0) + live.get('vanished', 0)}   ")


class Interrupted(Exception):
    """A signal asked the check to stop: clean up and exit 130."""


class GaveUp(Exception):
    """A bounded wait ran out (its message says what for): clean up and exit 2."""


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
    settings = {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()}
    (out / CHECK).write_text(json.dumps(settings) + "\n")
    formation = HostsFormation(args) if args.hosts else Formation(args)
    locust = None
    try:
        print(f"factor6 check: {args.workload} on {args.web} web instances ({args.mode} hits, {args.session_store}"
              f" sessions, scratch {args.scratch}) behind {args.front}{' (sticky)' * args.proxy_sticky},"
              f" {args.hits} hits, {args.duration:.0f}s, chaos {args.chaos_rate}/s ({args.chaos_mix}),"
              f" seed {args.seed}; report in {out}")
        formation.start(abort=signals.check)
        command = locust_command(args, formation)
        locust = start(formation.wrap(command), log_path=out / LOCUST_LOG)
        started = time.monotonic()
        while locust.poll() is None:
            signals.check()
            exited = getattr(formation, "exited", lambda: None)()  # the hosts formation is not watched
            if exited is not None:
                raise GaveUp(f"the formation stopped during the run (honcho exited with {exited});"
                             f" see {out / FORMATION_LOG}")
            if time.monotonic() - started > locust_deadline(args):
                raise GaveUp(f"Locust had not finished {locust_deadline(args):.0f}s after starting a"
                             f" {args.duration:g}s run; see {out / LOCUST_LOG}")
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
    if not (out / VERDICT_JSON).exists():
        print(f"Locust exited with {locust.returncode} without a verdict: {locust_reason(out)}")
    print((out / VERDICT_TXT).read_text() if (out / VERDICT_TXT).exists() else render.headline(verdict))
    from bench.harness import report  # matplotlib: not loaded by a check refused while parsing

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
    except Refused as exc:
        print(f"\nchaos refused: {exc}")
        return 2
    except Missing as exc:
        print(f"\n--front {args.front} skipped: {exc}")
        return 2
    except TimeoutError as exc:
        print(f"\nthe formation did not come up: {exc}; see {args.report_dir / FORMATION_LOG}")
        return 2
    except GaveUp as exc:
        print(f"\ngave up: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
