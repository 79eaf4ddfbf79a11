"""The honcho formation and the Swarm one side by side, in one run: deploy to first hit served, a killed
instance to its replacement serving, a scale-up to new capacity serving, hits/s at N=4.

    $ .venv/bin/python -m bench.benchmarks.orchestrators                 # 5 kills each, 15 s of wrk (root: Swarm)
    $ .venv/bin/python -m bench.benchmarks.orchestrators --kills 3 --duration 10

Each formation is started as ``scripts/check`` starts it (bench.harness.model's build_formation) with no chaos
of its own; the kills are then made one at a time by its own chaos family, each waited for: on honcho a
SIGKILL to a gunicorn worker, replaced by its master (honcho restarts nothing: a dead master ends the
formation); on the Swarm a ``docker kill`` of a whole web task, replaced by Swarm (bench/chaos/orchestrator.py,
timed to the replacement's first sight in the registry the proxy routes by). The scale-up asks for a fifth
instance (``scripts/scale web=5`` on honcho, ``docker service scale`` on the Swarm) and times until the proxy
routes to 5. hits/s: wrk, 32 connections, POST /hits without a key, through the proxy.
"""
import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.benchmarks import wrk
from bench.chaos.engine import ChaosMonkey
from bench.chaos.orchestrator import SwarmChaos
from bench.harness.formation import healthy_backends
from bench.harness.model import FormationSpec, LoadSpec, build_formation
from scaler.cli import ask

WEB = 4
WAIT_S = 120


def first_hit(url, result, stop):
    """Polls POST /hits until one is served; notes when (monotonic)."""
    while not stop.is_set():
        try:
            if requests.post(f"{url}/hits", timeout=2).ok:
                result.append(time.monotonic())
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)


def wait(predicate, what):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def kill_times(monkey, kills):
    """Seconds from each kill to its replacement serving, one kill at a time."""
    times = []
    for _ in range(kills):
        event = monkey.act("kill")
        if event["outcome"] != "ok":
            continue
        wait(lambda: any(e["action"] == "recovery" and e["time"] >= event["time"] for e in monkey.events),
             "a recovery")
        [recovery] = [e for e in monkey.events if e["action"] == "recovery" and e["time"] >= event["time"]][:1]
        value = recovery.get("serving_s", recovery.get("recovery_s"))
        if value is not None:
            times.append(value)
        time.sleep(2)
    return times


def measure(engine, kills, duration):
    out = Path(tempfile.mkdtemp(prefix=f"orchestrators-{engine}-"))
    formation = build_formation(FormationSpec(engine=engine, web=WEB, report_dir=out), LoadSpec(chaos_rate=0))
    first, stop = [], threading.Event()
    poller = threading.Thread(target=first_hit, args=(formation.proxy_url, first, stop), daemon=True)
    began = time.monotonic()
    poller.start()
    try:
        formation.start()
        served_all = time.monotonic()
        poller.join(WAIT_S)
        deployed = formation.deploy_began if engine == "swarm" else began
        row = {"engine": engine, "start_s": served_all - began, "first_hit_s": first[0] - deployed,
               "all_serving_s": served_all - deployed}
        row["rps"] = wrk.run(f"{formation.proxy_url}/hits", 32, duration, script=wrk.KEYLESS)["rps"]
        client = formation.client()
        if engine == "swarm":
            monkey = SwarmChaos(formation.engine.client, formation.stack, client, WEB, rate=1, mix="kill", seed=1)
        else:
            monkey = ChaosMonkey(client, rate=1, mix="kill", seed=1)
        try:
            row["kills"] = kill_times(monkey, kills)
        finally:
            monkey.stop()
        scaled = time.monotonic()
        if engine == "swarm":
            formation.engine.client.services.get(f"{formation.stack}_web").scale(WEB + 1)
        else:
            ask(client, WEB + 1)
        wait(lambda: healthy_backends(formation.proxy_url) >= WEB + 1, "the proxy routing to one more")
        row["scale_up_s"] = time.monotonic() - scaled
        return row
    finally:
        stop.set()
        formation.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench.benchmarks.orchestrators", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk")
    args = parser.parse_args(argv)
    rows = [measure(engine, args.kills, args.duration) for engine in ("honcho", "swarm")]
    print("| | honcho | Swarm |\n|---|---|---|")
    for label, value in (
            ("start() to all 4 serving, s (Swarm: engine up and image build included)", lambda r: f"{r['start_s']:.1f}"),
            ("deploy to first hit served, s", lambda r: f"{r['first_hit_s']:.1f}"),
            ("deploy to all 4 serving, s", lambda r: f"{r['all_serving_s']:.1f}"),
            ("kill to replacement serving, median s", lambda r: f"{statistics.median(r['kills']):.2f}"),
            ("kill to replacement serving, worst s", lambda r: f"{max(r['kills']):.2f}"),
            ("scale-up 4 to 5, proxy routing to 5, s", lambda r: f"{r['scale_up_s']:.1f}"),
            ("hits/s at N=4 (wrk, 32 connections)", lambda r: f"{r['rps']:.0f}")):
        print(f"| {label} | {value(rows[0])} | {value(rows[1])} |")
    print(rows)


if __name__ == "__main__":
    main()
