"""The formation on a real Docker engine (bench/harness/engine.py): the stack file deployed as written, and
``scripts/check --engine swarm`` valid under chaos through Docker, invalid with its wrong-on-purpose settings.

Skipped, in one line, where Docker cannot run (not root, no overlay, no cgroups). A warm run (images in
/var/cache/factor6/docker) costs a few minutes; a cold one adds the debootstrap and the image build (about
6 minutes, BENCHMARKS.md).
"""
import os
import time

import pytest
import requests

from bench.harness.engine import ENGINE_ADDRESS, DockerEngine, Unavailable, unavailable
from bench.packages import Missing
from bench.paths import ROOT

pytestmark = pytest.mark.timeout(1800)


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
