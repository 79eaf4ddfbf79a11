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
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from bench import report
from bench.hosts import HostsFormation, Unavailable
from bench.processes import free_port, honcho_base_port, stop_tree, wait_until
from web.config import HIT_MODES
from web.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


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
    parser.add_argument("--hosts", action="store_true",
                        help="one host per role, made of network namespaces (root); skipped where impossible")
    parser.add_argument("--require-hosts", action="store_true", help="--hosts, failing where it cannot run")
    args = parser.parse_args(argv)
    args.hosts = args.hosts or args.require_hosts
    args.report_dir = args.report_dir or ROOT / "reports" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.mode}"
    return args


class Formation:
    """The formation ``honcho start`` runs for one check, on free ports."""

    def __init__(self, args):
        self.args = args
        self.redis_port, self.proxy_port = free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.proxy_url = f"http://127.0.0.1:{self.proxy_port}"
        self.honcho = None

    def start(self):
        out = self.args.report_dir
        env_file = out / "formation.env"
        # honcho lets its env file override the shell's, so this file is the formation's whole config.
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {
            "PORT_REDIS": self.redis_port, "REDIS_DATA": out / "redis", "PROXY_PORT": self.proxy_port,
            "HIT_MODE": self.args.mode, "WEB_WORKERS": self.args.workers, **self.autoscale_env(),
        }.items()))
        types = ["redis", "web", "proxy", "scaler"] + ["autoscale"] * bool(self.args.autoscale)
        self.honcho = subprocess.Popen(
            [BIN / "honcho", "start", "-e", env_file, "-p", str(honcho_base_port()), "-c", f"web={self.args.web}",
             *types],
            cwd=ROOT, stdout=open(out / "formation.log", "wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.redis_url)
        wait_until(lambda: len(Registry(client).instances()) == self.args.web, timeout=60,
                   what=f"{self.args.web} web instances")
        wait_until(lambda: self.healthy_backends() == self.args.web, timeout=30, what="the proxy")

    def autoscale_env(self):
        """The autoscaler's bounds and log; its other AUTOSCALE_* settings pass through from the shell."""
        if not self.args.autoscale:
            return {}
        return {"AUTOSCALE_MIN": self.args.web, "AUTOSCALE_MAX": max(self.args.autoscale, self.args.web),
                "AUTOSCALE_LOG": self.args.report_dir / "autoscale.jsonl"}

    def healthy_backends(self):
        metrics = requests.get(f"{self.proxy_url}/_proxy/metrics", timeout=2).json()
        return sum(1 for b in metrics["backends"] if b["state"] == "up")

    def stop(self):
        if self.honcho:
            stop_tree(self.honcho.pid)

    def wrap(self, command):
        """Locust runs on this machine as it is (HostsFormation puts it in a host of its own)."""
        return command


def locust_command(args, formation):
    out = args.report_dir
    command = [
        BIN / "locust", "-f", ROOT / "bench/locustfile.py", "--headless",
        "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration:g}s",
        "--host", formation.proxy_url, "--redis-url", formation.redis_url,
        # With --hosts a chaos agent runs on each web host: from the load host, no process would be local.
        "--report-dir", out, "--chaos-rate", str(0 if args.hosts else args.chaos_rate), "--chaos-mix", args.chaos_mix,
        "--chaos-seed", str(args.seed), "--csv", out / "locust", "--csv-full-history",
        "--html", out / "locust.html", "--stop-timeout", "10", "--only-summary",
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
    live = report.read_json(out / "live.json", {})
    chaos = report.read_jsonl(out / "chaos.jsonl")
    actions = [event for event in chaos if event.get("action") not in ("recovery", "thaw")]
    kills = sum(1 for event in actions if event.get("action") in ("kill", "term"))
    return (f"\r{elapsed:5.0f}/{args.duration:.0f}s  {live.get('rps', 0):7.1f} rps  {len(actions)} chaos actions"
            f" ({kills} kills)  violations so far: {live.get('lost', 0) + live.get('duplicated', 0)}   ")


def run(args):
    args.report_dir.mkdir(parents=True, exist_ok=True)
    out = args.report_dir
    formation = HostsFormation(args) if args.hosts else Formation(args)
    locust = None
    try:
        print(f"factor6 check: {args.web} web instances in {args.mode} mode, {args.duration:.0f}s,"
              f" chaos {args.chaos_rate}/s ({args.chaos_mix}), seed {args.seed}; report in {out}")
        formation.start()
        command = locust_command(args, formation)
        locust = subprocess.Popen(formation.wrap(command), cwd=ROOT,
                                  stdout=open(out / "locust.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        started = time.monotonic()
        while locust.poll() is None:
            if sys.stdout.isatty():
                print(progress_line(args, started, out), end="", flush=True)
            time.sleep(1)
        print(progress_line(args, started, out))
    finally:
        if locust:
            stop_tree(locust.pid)
        formation.stop()
    verdict = report.read_json(out / "verdict.json")
    print((out / "verdict.txt").read_text() if (out / "verdict.txt").exists() else "no verdict was written")
    report.write(out)
    print(f"report: {out / 'report.html'}")
    return verdict["status"] if verdict else 2


def interrupt(*_):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)  # clean up on SIGTERM exactly as on Ctrl-C
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: formation and Locust stopped")
        return 130
    except Unavailable as exc:
        print(f"\n--hosts skipped: {exc}")
        return 2 if args.require_hosts else 0
    except TimeoutError as exc:
        print(f"\nthe formation did not come up: {exc}; see {args.report_dir}/formation.log")
        return 2


if __name__ == "__main__":
    sys.exit(main())
