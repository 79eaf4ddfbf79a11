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
A first Ctrl-C (or SIGTERM) stops the load: Locust concludes on what ran, and the
verdict and the report are written as for a whole run (exit status 130); a second
one aborts at once. Every process started here is stopped on the way out.
Settings: bench.harness.options (flags, and the environment where a flag is absent);
the formation: bench.harness.model's ``build_formation``.
"""
import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.chaos.network import Refused
from bench.chaos.vocabulary import KILLS, is_action
from bench.harness.launch import start
from bench.harness.engine import Unavailable as EngineUnavailable
from bench.harness.model import build_formation
from bench.harness.netns import Unavailable
from bench.harness.options import parse_args
from bench.packages import Missing
from bench.paths import BIN, ROOT
from bench.runfolder import (CHAOS, CHECK, CSV_PREFIX, FORMATION_LOG, LIVE, LOCUST_HTML, LOCUST_LOG, REPORT_HTML,
                             VERDICT_JSON, VERDICT_TXT, read_json, read_jsonl)
from bench.verdict import render
from scaler.processes import free_port, stop_tree

LOCUST_STOP_TIMEOUT = 10  # seconds Locust gives its users to finish after the run time
# Seconds a Locust told to stop may take to exit: its users' drain (bench/load/run.py's DRAIN_S, 10 s), its stop
# timeout, the wait for the journals (--journal-timeout, 30 s) and a minute to judge and write.
CONCLUDE_S = 10 + LOCUST_STOP_TIMEOUT + 30 + 60


def locust_deadline(load):
    """Seconds Locust may take in all: the run, then as long as a Locust told to stop."""
    return load.duration + CONCLUDE_S


def locust_reason(out):
    """Why a Locust that wrote no verdict stopped: its first error line, else its last line."""
    lines = [line.strip() for line in (out / LOCUST_LOG).read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "/ERROR/" in line or line.startswith(("factor6:", "locust: error"))]
    return (errors or lines or ["(no output)"])[0]


def locust_command(spec, load, formation):
    """Locust's command line for ``load`` through ``formation``, writing into ``spec.report_dir``."""
    out = spec.report_dir
    # A formation with chaos agents of its own (bench.harness.model.ChaosTarget) leaves Locust's monkey idle.
    rate = load.chaos_rate if formation.chaos_target.embedded else 0
    command = [
        BIN / "locust", "-f", ROOT / "bench/locustfile.py", "--headless",
        "-u", str(load.users), "-r", str(load.users), "-t", f"{load.duration:g}s",
        "--host", formation.proxy_url, "--redis-url", formation.redis_url,
        "--report-dir", out, "--chaos-rate", str(rate), "--chaos-mix", load.chaos_mix,
        "--chaos-seed", str(load.seed), "--csv", out / CSV_PREFIX, "--csv-full-history",
        "--html", out / LOCUST_HTML, "--stop-timeout", str(LOCUST_STOP_TIMEOUT), "--only-summary",
        "--min-success", str(load.min_success),
        "--workload", load.workload, "--upload-size", load.upload_size,
        "--hits", spec.hits,
    ]
    if load.shape:
        command += ["--shape", load.shape]
    if load.processes:
        # A port of its own: workers left over from another run must not join this master.
        port = str(free_port())
        command += ["--processes", str(load.processes), "--master-bind-port", port, "--master-port", port]
    return [str(part) for part in command]


def header(check):
    """The run in one sentence, naming only the settings its workloads use, and where each non-default came from."""
    spec, load = check.formation, check.load
    workloads = load.workload.split(",")
    used = {"hits": f"{spec.mode} hits", "session": f"{spec.session_store} sessions",
            "upload": f"scratch {spec.scratch}"}
    settings = [words for workload, words in used.items() if workload in workloads]
    kind = f", {spec.hits} hits" if "hits" in workloads else ""
    line = (f"factor6 check: {load.workload} on {spec.web} web instances ({', '.join(settings)}) behind {spec.front}"
            f"{' (sticky)' * spec.proxy_sticky}{kind}, {load.duration:.0f}s, chaos {load.chaos_rate:g}/s"
            f" ({load.chaos_mix}), seed {load.seed}; report in {spec.report_dir}")
    chosen = {**dataclasses.asdict(spec), **dataclasses.asdict(load)}
    shown = {name: f"{value:g}" if isinstance(value, float) else value for name, value in chosen.items()}
    origins = [f"{name.replace('_', ' ')} {shown[name]} ({origin})" for name, origin in check.origins.items()
               if name != "report_dir"]
    return line + (f"\nnot the default: {'; '.join(origins)}" if origins else "")


def progress_line(load, started, out, state=None):
    """elapsed/total (past it "concluding"; else ``state``: stopping, done), rps, chaos actions, violations so far:
    from what the run writes as it goes."""
    elapsed = time.monotonic() - started
    clock = state or (f"{elapsed:3.0f}/{load.duration:.0f}s" if elapsed <= load.duration else "concluding")
    live = read_json(out / LIVE, {})
    actions = [event for event in read_jsonl(out / CHAOS) if is_action(event)]
    kills = sum(1 for event in actions if event.get("action") in KILLS)
    return (f"\r{clock:>10}  {live.get('rps', 0):7.1f} rps  {len(actions)} chaos actions"
            f" ({kills} SIGKILLs)  violations so far:"
            f" {live.get('lost', 0) + live.get('duplicated', 0) + live.get('vanished', 0)}   ")


class Interrupted(Exception):
    """A signal asked the check to stop at once: clean up and exit 130."""


class GaveUp(Exception):
    """A bounded wait ran out (its message says what for): clean up and exit 2."""


class Signals:
    """Handlers only note the signal; the check's loops call ``check()`` and act, as gunicorn's arbiter does."""

    def __init__(self, *signums):
        self.received = []
        for signum in signums:
            signal.signal(signum, lambda signum, _frame: self.received.append(signum))

    def check(self, allowed=0):
        """Raises Interrupted once more than ``allowed`` signals came (while the load stops gracefully: 1)."""
        if len(self.received) > allowed:
            raise Interrupted(signal.Signals(self.received[allowed]).name)

    def name(self, index=0):
        return signal.Signals(self.received[index]).name


def left_in(out):
    """What an aborted run leaves in its folder, in one line."""
    names = sorted(path.name + "/" * path.is_dir() for path in out.iterdir()) if out.is_dir() else []
    return f"{out}: {', '.join(names) or 'nothing'}"


def run_load(check, formation, signals):
    """Locust through the formation to its end, or to a graceful stop at the first signal; returns Locust's
    Popen and whether it was stopped."""
    spec, load, out = check.formation, check.load, check.formation.report_dir
    # No terminal input: Locust's headless key listener would take the user's keys (and Ctrl-C is ours to act on).
    locust = start(formation.wrap(locust_command(spec, load, formation)), log_path=out / LOCUST_LOG,
                   stdin=subprocess.DEVNULL)
    started, stopping = time.monotonic(), None
    try:
        while locust.poll() is None:
            signals.check(allowed=1)
            if signals.received and stopping is None:
                stopping = time.monotonic()
                print(f"\n{signals.name()}: stopping the load; Locust judges what ran (up to {CONCLUDE_S}s;"
                      f" again to abort at once)", flush=True)
                locust.send_signal(signal.SIGTERM)  # Locust's own graceful stop: test_stop, quitting, the report
            exited = formation.exited()
            if exited is not None:
                raise GaveUp(f"the formation stopped during the run ({spec.engine} exited with {exited}); see"
                             f" {out / FORMATION_LOG}")
            if stopping and time.monotonic() - stopping > CONCLUDE_S:
                raise GaveUp(f"Locust had not concluded {CONCLUDE_S}s after being stopped; see {out / LOCUST_LOG}")
            if time.monotonic() - started > locust_deadline(load):
                raise GaveUp(f"Locust had not finished {locust_deadline(load):.0f}s after starting a"
                             f" {load.duration:g}s run; see {out / LOCUST_LOG}")
            if sys.stdout.isatty():
                print(progress_line(load, started, out, stopping and "stopping"), end="", flush=True)
            time.sleep(0.5)
    finally:
        stop_tree(locust.pid)  # its worker processes too, whatever happened
    print(progress_line(load, started, out, "stopped" if stopping else "done"))
    return locust, stopping is not None


def run(check, signals):
    spec, load = check.formation, check.load
    out = spec.report_dir
    out.mkdir(parents=True, exist_ok=True)
    settings = {name: str(value) if isinstance(value, Path) else value
                for name, value in {**dataclasses.asdict(spec), **dataclasses.asdict(load)}.items()}
    (out / CHECK).write_text(json.dumps({**settings, "origins": dict(check.origins)}) + "\n")
    formation = build_formation(spec, load)
    try:
        print(header(check), flush=True)
        formation.start(abort=signals.check)
        locust, stopped = run_load(check, formation, signals)
    finally:
        # Signals arriving now are noted and ignored: cleanup always runs to its end.
        formation.stop()
    verdict = render.from_json(read_json(out / VERDICT_JSON))
    if not (out / VERDICT_JSON).exists():
        print(f"Locust exited with {locust.returncode} without a verdict: {locust_reason(out)}")
    print((out / VERDICT_TXT).read_text() if (out / VERDICT_TXT).exists() else render.headline(verdict))
    from bench.harness import report  # matplotlib: not loaded by a check refused while parsing

    report.write(out)
    print(f"report: {out / REPORT_HTML}")
    if stopped:
        print(f"stopped by {signals.name()}: the verdict is on what ran before")
        return 130
    return verdict.exit_code


def main(argv=None):
    check = parse_args(argv)
    spec = check.formation
    signals = Signals(signal.SIGTERM, signal.SIGINT)  # clean up on SIGTERM exactly as on Ctrl-C
    try:
        return run(check, signals)
    except Interrupted as exc:
        judged = "" if (spec.report_dir / VERDICT_JSON).exists() else ", no verdict"
        print(f"\ninterrupted by {exc}: formation and Locust stopped{judged}; left in {left_in(spec.report_dir)}")
        return 130
    except Unavailable as exc:
        print(f"\n--hosts skipped: {exc}")
        return 2 if spec.require_hosts else 0
    except Refused as exc:
        print(f"\nchaos refused: {exc}")
        return 2
    except Missing as exc:
        print(f"\n--front {spec.front} skipped: {exc}")
        return 2
    except EngineUnavailable as exc:
        print(f"\n--engine {spec.engine} skipped: {exc}")
        return 2
    except TimeoutError as exc:
        print(f"\nthe formation did not come up: {exc}; see {spec.report_dir / FORMATION_LOG}")
        return 2
    except GaveUp as exc:
        print(f"\ngave up: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
