"""scripts/probe: does an app keep state in its processes? Start it N times, write, read elsewhere, restart, judge.

    $ scripts/probe examples/stateless-redis                      # VALID, exit 0
    $ scripts/probe examples/memory-records --junit probe.xml     # INVALID, exit 1, with evidence and a fix hint
    $ scripts/probe . --env SESSION_STORE=memory --duration 5     # the demo app, wrong on purpose
    $ scripts/probe APP_DIR --command 'exec node server.js $PORT' --instances 4 --through-proxy --proxy-sticky

Reads APP_DIR's Procfile (the ``web`` line, or ``--process``) and its
factor6.toml (bench/probe/spec.py); a bad flag or spec is refused in one line
before anything starts. Each instance is a machine of its own
(bench/probe/instances.py); visitors write and read back under chaos
(bench/probe/run.py), or, without a factor6.toml, the zero-config probes run
(bench/probe/zeroconf.py). The verdict (bench/probe/verdict.py) goes to the
console, the run folder (probe.json, exchanges.jsonl, chaos.jsonl,
formation.jsonl, logs/, report.html) and, with ``--junit``, a JUnit XML file.
Exit status: 0 VALID, 1 INVALID, 2 NO VERDICT or refused, 130 interrupted.
Every process started is stopped and every disk removed, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from pathlib import Path

from honcho.environ import parse as parse_env_file

from bench.arguments import OneLineParser, new_run_folder, number, writable_folder
from bench.harness.check import Interrupted, Signals
from bench.harness.launch import Processes, process_env
from bench.probe import report, zeroconf
from bench.probe.instances import ISOLATIONS, Machines, NeverReady, isolation_mode
from bench.probe.formation import Formation
from bench.probe.run import Probing
from bench.probe.spec import SpecError, load
from bench.probe.verdict import ProbeResult, judge_probe
from bench.runfolder import write_json
from common.redis_client import connect
from common.registry import Registry

ENV_ITEM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)
REDIS_VARIABLES = ("REDIS_URL", "HOST_REDIS", "PORT_REDIS")


def env_item(text):
    """An argparse type: ``NAME=VALUE``."""
    match = ENV_ITEM.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, not {text!r}")
    return match.group(1), match.group(2)


def parse_args(argv=None):
    """The probe's settings and the app's spec; a bad one ends here in one line (exit 2), before anything starts."""
    parser = OneLineParser(prog="scripts/probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("app_dir", metavar="APP_DIR", help="the app's folder: its Procfile and optional factor6.toml")
    parser.add_argument("--process", help="the Procfile line to run (default: factor6.toml's, else web)")
    parser.add_argument("--command", help="the command of one instance, naming $PORT, instead of the Procfile's")
    parser.add_argument("--instances", type=number(int, least=2, hint=" (state is shared, or not, between two)"),
                        help="instances at the start (default: factor6.toml's, else 3)")
    parser.add_argument("--env", type=env_item, action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for every instance, over factor6.toml's [app.env] (repeatable)")
    parser.add_argument("--through-proxy", action="store_true",
                        help="visitors go through factor6's proxy, which chooses the instance (python -m proxy)")
    parser.add_argument("--proxy-sticky", action="store_true",
                        help="the proxy pins each visitor to one instance (implies --through-proxy): this only hides"
                             " state kept in a process until a restart")
    parser.add_argument("--duration", type=number(float, above=0), default=10.0,
                        help="seconds of writes and reads under chaos (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of visitors' tokens and the chaos targets")
    parser.add_argument("--isolation", choices=ISOLATIONS, default="auto",
                        help="mount: overlay and private /tmp in a mount namespace (root); copy: a copy of APP_DIR;"
                             " auto: mount where possible (default)")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write the verdict as JUnit XML, a test case"
                                                                   " per probe")
    parser.add_argument("--report-dir", type=writable_folder, help="default: reports/probe-<time>-<app>-<random>")
    args = parser.parse_args(argv)
    args.through_proxy = args.through_proxy or args.proxy_sticky
    if args.isolation == "mount" and isolation_mode("auto") != "mount":
        parser.error("--isolation mount needs root and unshare (a mount namespace per instance); use --isolation copy")
    try:
        args.spec = load(args.app_dir, command=args.command, process=args.process, instances=args.instances)
    except SpecError as exc:
        parser.error(str(exc))
    if args.junit and not args.junit.parent.is_dir():
        parser.error(f"--junit: {args.junit.parent} is no folder")
    args.app_dir = Path(args.app_dir).resolve()
    args.report_dir = args.report_dir or new_run_folder(parser, f"probe-{args.app_dir.name or 'app'}")
    return args


def app_env(args, redis=None):
    """What every instance gets: this environment (no Redis of its own), APP_DIR/.env as honcho reads it,
    factor6.toml's [app.env], factor6's Redis (``redis``, a started bench.harness.launch server) when asked for,
    then --env."""
    env = {name: value for name, value in process_env().items() if name not in REDIS_VARIABLES}
    dotenv = args.app_dir / ".env"
    if dotenv.is_file():
        env.update(parse_env_file(dotenv.read_text()))
    env.update(dict(args.spec.app.env))
    if redis:
        env.update(REDIS_URL=redis.url, HOST_REDIS="127.0.0.1", PORT_REDIS=str(redis.port))
    env.update(dict(args.env))
    return env


def zero_config(formation, ready):
    """The probes without a spec: cookies carried across instances and a restart, one GET asked of all."""
    machines = formation.machines
    first, second = machines.running()[:2]
    cookies = zeroconf.CookieProbe(ready)
    cookies.issue(first)
    cookies.replay(second, "elsewhere")
    same = zeroconf.same_get(machines.running(), ready)
    formation.rolling()
    cookies.replay(machines.running()[0], "after restart")
    return zeroconf.without_spec([cookies.result, same])


def probe(args, signals):
    spec, out = args.spec, args.report_dir
    procs = Processes(log_dir=out / "logs")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    machines = formation = probing = None
    results, started = [], time.time()
    try:
        redis = procs.redis(out / "redis") if spec.redis or args.through_proxy else None
        machines = Machines(args.app_dir, spec.app.command, app_env(args, redis if spec.redis else None),
                            out / "logs", process=spec.app.process, ready=spec.app.ready,
                            ready_timeout=spec.app.ready_timeout, isolation=args.isolation, abort=signals.check)
        registry = Registry(connect(redis.url), ttl=3.0) if args.through_proxy else None
        formation = Formation(machines, registry)
        print(report.opening(args, machines.isolation, out), flush=True)
        try:
            formation.start_many(spec.app.instances)
            front = None
            if args.through_proxy:
                front = procs.proxy(redis.url, PROXY_STICKY="cookie" if args.proxy_sticky else "none",
                                    PROXY_STICKY_SECRET="factor6-probe").url
            if spec.probes:
                probing = Probing(spec, formation, front, seed=args.seed, duration=args.duration)
                probing.run(abort=signals.check)
            else:
                results = zero_config(formation, spec.app.ready)
        except NeverReady as exc:
            results = [ProbeResult("app", reasons=[f"the app never became ready: {exc}"])]
    finally:
        # Signals arriving now are noted and ignored: cleanup always runs to its end.
        if machines:
            machines.close()
        procs.stop_all()
        if formation:
            formation.write(out)
    if probing:
        stopped = {instance.name: instance.stopped for instance in machines.instances}
        for spec_probe in spec.probes:
            visitors = [v for v in probing.visitors if v.probe is spec_probe]
            result = judge_probe(spec_probe.name, [w for v in visitors for w in v.writes], stopped,
                                 [v.setup_failure for v in visitors if v.setup_failure])
            result.errors = [f"the probe itself failed ({v.name}): {v.crash}" for v in visitors if v.crash]
            results.append(result)
    return results, report.write_all(args, out, results, machines, probing, formation, started)


def main(argv=None):
    args = parse_args(argv)
    signals = Signals(signal.SIGTERM, signal.SIGINT)  # clean up on SIGTERM exactly as on Ctrl-C
    try:
        results, code = probe(args, signals)
    except Interrupted as exc:
        print(f"\ninterrupted by {exc}: every instance stopped, every disk removed")
        return 130
    write_json(args.report_dir / "settings.json", {"argv": sys.argv[1:] if argv is None else list(argv)})
    return code
