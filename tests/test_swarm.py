"""The formation on a real Docker engine (bench/harness/engine.py): the stack file deployed as written, and
``scripts/check --engine swarm`` valid under chaos through Docker, invalid with its wrong-on-purpose settings.

Skipped, in one line, where Docker cannot run (not root, no overlay, no cgroups). A warm run (images in
/var/cache/factor6/docker) costs a few minutes; a cold one adds the debootstrap and the image build (about
6 minutes, BENCHMARKS.md).
"""
import json
import os
import subprocess
import time

import pytest
import requests

from bench.harness.engine import ENGINE_ADDRESS, DockerEngine, Unavailable, unavailable
from bench.packages import Missing
from bench.paths import ROOT
from bench.runfolder import CHAOS, VERDICT_JSON, read_json, read_jsonl
from tests.procs import process_env

pytestmark = [pytest.mark.timeout(1800), pytest.mark.docker]


@pytest.fixture
def engine():
    reason = unavailable()
    if reason:
        pytest.skip(f"no Docker engine here: {reason}")
    engine = DockerEngine()
    try:
        engine.start()
    except (Unavailable, Missing) as exc:
        pytest.skip(f"no Docker engine here: {exc}")
    try:
        yield engine
    finally:
        engine.stop()


def served_by(url):
    try:
        response = requests.post(f"{url}/hits", timeout=5)
        return response.json()["served_by"]["instance"] if response.ok else None
    except (requests.RequestException, ValueError, KeyError):
        return None


def test_docker_stack_deploy_takes_the_compose_file_as_written(engine):
    image = engine.project_image()
    engine.swarm()
    stack = f"deploy{os.getpid()}"
    deployed = engine.cli("stack", "deploy", "--resolve-image", "never", "-c", ROOT / "docker-compose.yml", stack,
                          check=False, env={**os.environ, "FACTOR6_IMAGE": image})
    assert deployed.returncode == 0, deployed.stderr
    try:
        url, seen = f"http://{ENGINE_ADDRESS}:8000", set()
        deadline = time.monotonic() + 300
        while len(seen) < 4 and time.monotonic() < deadline:  # the file's 4 web replicas, all behind the proxy
            seen.add(served_by(url))
            seen.discard(None)
            time.sleep(0.5)
        assert len(seen) == 4, f"hits were served by {sorted(seen)} only"
        services = {s.name: s for s in engine.client.services.list()}
        assert services[f"{stack}_web"].attrs["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    finally:
        engine.cli("stack", "rm", stack, check=False)


# -- scripts/check --engine swarm --------------------------------------------------------------

def check(tmp_path, *args, engine="swarm", env=None):
    """scripts/check on a Docker formation (4 web tasks unless ``args`` say otherwise), with ``env`` over this
    environment; skips, in one line, where its engine cannot run."""
    out = tmp_path / "report"
    done = subprocess.run([str(ROOT / "scripts/check"), "--engine", engine, "--web", "4", "--report-dir", str(out),
                           *args], cwd=ROOT, env=process_env(**(env or {})), capture_output=True, text=True,
                          timeout=1500)
    skipped = [line for line in done.stdout.splitlines() if line.startswith(f"--engine {engine} skipped: ")]
    if skipped:
        pytest.skip(skipped[0])
    return done, out


def applied(out, action):
    return [e for e in read_jsonl(out / CHAOS) if e["action"] == action and e["outcome"] == "ok"]


def test_a_check_under_chaos_through_docker_is_valid(tmp_path):
    done, out = check(tmp_path, "--duration", "60", "--chaos-rate", "0.5",
                      "--chaos-mix", "kill=2,term,freeze,scale,redis-kill")
    assert done.returncode == 0 and "\nVALID" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    kills, scales, redis_kills = applied(out, "kill"), applied(out, "scale"), applied(out, "redis-kill")
    assert kills and scales and redis_kills, "kills, scales and a Redis kill were applied"
    assert all(e["docker"].startswith("docker kill ") and e["target"].startswith("web.") for e in kills)
    assert all(e["docker"].startswith("docker service scale web=") for e in scales)
    assert all(e["target"] == "redis.1" and e["container"] for e in redis_kills)
    recovered = [e for e in applied(out, "recovery") if e["after"] in ("kill", "redis-kill")]
    assert recovered and all(e["started_s"] > 0 and e["replacement"] for e in recovered), \
        "replacements are timed from the engine's events"
    settings = json.loads((out / "stack.override.yml").read_text())
    assert settings["services"]["web"]["deploy"]["replicas"] == 4


def test_local_counting_and_sessions_in_memory_on_swarm_are_each_invalid(tmp_path):
    """The negative controls, in one run with no chaos at all: each task counting on its own, and each keeping
    sessions in its memory, are caught across tasks, each by its own workload's checker."""
    done, out = check(tmp_path, "--workload", "hits,session", "--mode", "local", "--session-store", "memory",
                      "--duration", "20", "--chaos-rate", "0")
    assert done.returncode == 1 and "\nINVALID" in done.stdout, done.stdout[-3000:]
    parts = read_json(out / VERDICT_JSON)["stats"]["workloads"]
    assert {name: part["status"] for name, part in parts.items()} == {"hits": "invalid", "session": "invalid"}, parts


def test_local_counting_on_compose_is_invalid(tmp_path):
    """--engine compose: the same file run by docker-compose (Debian's 1.29), no Swarm; its negative control."""
    done, _ = check(tmp_path, "--mode", "local", "--duration", "15", "--chaos-rate", "0", engine="compose")
    assert done.returncode == 1 and "\nINVALID" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
