"""The formation as a Docker Swarm stack: ``scripts/check --engine swarm`` (bench.harness.model's Formation).

    formation = SwarmFormation(FormationSpec(engine="swarm", web=4, report_dir=out), LoadSpec(chaos_rate=0.5))
    formation.start()        # engine up, image built, `docker stack deploy`; returns once N tasks serve
    formation.proxy_url      # http://10.207.0.2:8000: the proxy task's host-mode port in the engine's namespace
    formation.stop()         # chaos stopped, stack removed, swarm left, engine down

The stack deployed is the repository's docker-compose.yml as written, with one
overlay file of this run's settings (``stack.override.yml`` in the report
folder: web replicas and the settings honcho's formation gets from its env
file; the stack's own Locust scaled to 0, since the check's Locust runs here).
The engine is bench/harness/engine.py's: ``dockerd`` in a network namespace
this machine reaches through one veth, so the published ports are never on
the machine's own addresses. Chaos runs here, through Docker
(bench/chaos/orchestrator.py), into the run's chaos journal; Locust's own
monkey stays idle.

``ComposeFormation`` (``--engine compose``) runs the same file and overlay with ``docker-compose up`` on the
same engine, without chaos.
"""
import json
import os
import subprocess
import threading
import time

from bench.chaos.orchestrator import SwarmChaos
from bench.chaos.network import Refused
from bench.harness.engine import ENGINE_ADDRESS, PROJECT_IMAGE, DockerEngine, Unavailable
from bench.harness.formation import healthy_backends, proxy_state_env, served, web_state_env
from bench.harness.model import ChaosTarget
from bench.packages import Missing, installed
from bench.paths import ROOT
from bench.runfolder import CHAOS, FORMATION_LOG
from common.redis_client import connect
from common.registry import Registry
from scaler.processes import wait_until

COMPOSE_FILE = ROOT / "docker-compose.yml"
OVERRIDE = "stack.override.yml"
PROXY_PORT, REDIS_PORT = 8000, 6379  # as published in docker-compose.yml
START_TIMEOUT_S = 300  # a cold machine builds nothing here (the engine did), but 6 Python starts take a while


class SwarmFormation:
    """One check's formation as a single-node Swarm stack (see the module docstring)."""

    chaos_target = ChaosTarget(embedded=False)  # Locust's monkey would find no process here: SwarmChaos acts

    def __init__(self, spec, load=None):
        self.spec, self.load = spec, load
        self.stack = f"f6{os.getpid()}"
        self.proxy_url = f"http://{ENGINE_ADDRESS}:{PROXY_PORT}"
        self.redis_url = f"redis://{ENGINE_ADDRESS}:{REDIS_PORT}/0"
        self.engine = None
        self.deploy_began = None
        self.monkey = None
        self.timer = None
        self._client = None

    def client(self):
        self._client = self._client or connect(self.redis_url)
        return self._client

    def override(self, image):
        """The run's settings over the stack file, as YAML (JSON is YAML)."""
        spec = self.spec
        state = {k: str(v) for k, v in web_state_env(spec).items()}
        state["SCRATCH_DIR"] = "/tmp/scratch"  # in the container: the report folder is on this machine
        return {"services": {
            "redis": {"environment": {"REDIS_PERSISTENCE": spec.redis_persistence}},
            "web": {"environment": {"HIT_MODE": spec.mode, "WEB_WORKERS": str(spec.workers), **state},
                    "deploy": {"replicas": spec.web}},
            "proxy": {"environment": {"PROXY_STAMP_KEYS": str(int(spec.hits != "keyless-retried")),
                                      **{k: str(v) for k, v in proxy_state_env(spec).items()}}},
            "master": {"deploy": {"replicas": 0}},
            "worker": {"deploy": {"replicas": 0}},
        }}

    def start(self, abort=None):
        with open(self.spec.report_dir / FORMATION_LOG, "a") as log:
            self.deploy(log, abort)
        if self.load and self.load.chaos_rate > 0:
            self.monkey = SwarmChaos(self.engine.client, self.stack, self.client(), self.spec.web,
                                     rate=self.load.chaos_rate, mix=self.load.chaos_mix, seed=self.load.seed,
                                     log_path=self.spec.report_dir / CHAOS, recovery_timeout=60.0)
            self.monkey.start()
            self.timer = threading.Timer(self.load.duration, self.monkey.stop)
            self.timer.start()

    def deploy(self, log, abort):
        """Engine up, image built, the stack deployed; returns once every web task serves through the proxy."""
        out = self.spec.report_dir
        self.engine = DockerEngine()
        self.engine.start(abort)
        began = time.monotonic()
        image = self.engine.project_image()
        print(f"engine: dockerd {self.engine.client.version()['Version']} in namespace {self.engine.netns},"
              f" image {image} ready in {time.monotonic() - began:.1f}s", file=log, flush=True)
        (out / OVERRIDE).write_text(json.dumps(self.override(image), indent=2) + "\n")
        self.deploy_began = deployed = time.monotonic()  # what bench/benchmarks/orchestrators.py times from
        log.write(self.launch(image))

        # Until the Valkey and proxy tasks answer, wait_until takes their errors as "not yet".
        wait_until(lambda: len(Registry(self.client()).instances()) >= self.spec.web, timeout=START_TIMEOUT_S, interval=0.5,
                   what=f"{self.spec.web} web tasks in the registry", abort=abort)
        wait_until(lambda: healthy_backends(self.proxy_url) >= self.spec.web, timeout=START_TIMEOUT_S, interval=0.5,
                   what="the proxy task routing to every web task", abort=abort)
        print(f"stack {self.stack}: deployed to {self.spec.web} web tasks served in"
              f" {time.monotonic() - deployed:.1f}s", file=log, flush=True)

    def launch(self, image):
        """``docker stack deploy`` of the stack file and the run's overlay; its output."""
        self.engine.swarm()
        return self.engine.cli("stack", "deploy", "--resolve-image", "never", "-c", COMPOSE_FILE,
                               "-c", self.spec.report_dir / OVERRIDE, self.stack,
                               env={**os.environ, "FACTOR6_IMAGE": image})

    def take_down(self):
        self.engine.cli("stack", "rm", self.stack, check=False)

    def exited(self):
        """None: Swarm replaces what dies; a dead daemon is the one way the formation stops by itself."""
        if self.engine and self.engine.daemon and self.engine.daemon.poll() is not None:
            return self.engine.daemon.returncode
        return None

    def instances(self):
        return served(self.client())

    def wrap(self, command):
        return list(command)

    def stop(self):
        if self.timer:
            self.timer.cancel()
        if self.monkey:
            self.monkey.stop()
        if self._client:
            self._client.close()
        if self.engine:
            if self.engine.client:
                self.take_down()
            self.engine.stop()


class ComposeFormation(SwarmFormation):
    """``scripts/check --engine compose``: the same file and overlay run by ``docker-compose up`` on the same
    engine, no Swarm. The compose is Debian 12's ``docker-compose`` package (1.29, the one compose in its
    archive; the v2 plugin comes only from Docker's own repository), installed when missing. No chaos agent
    acts through compose yet: a check with chaos is refused before anything starts."""

    def __init__(self, spec, load=None):
        super().__init__(spec, load)
        if load and load.chaos_rate > 0:
            raise Refused("--engine compose has no chaos agent yet: use --chaos-rate 0, or --engine swarm")

    def compose(self, *args, image=PROJECT_IMAGE):
        try:
            program = installed("docker-compose", "docker-compose")
        except Missing as exc:
            raise Unavailable(str(exc)) from None
        return subprocess.run([program, "-p", self.stack, "-f", COMPOSE_FILE, "-f", self.spec.report_dir / OVERRIDE,
                               *args], capture_output=True, text=True,
                              env={**os.environ, "DOCKER_HOST": self.engine.host, "FACTOR6_IMAGE": image})

    def launch(self, image):
        done = self.compose("up", "--detach", "--no-build", "--scale", f"web={self.spec.web}", "redis", "web",
                            "proxy", image=image)
        if done.returncode:
            raise RuntimeError(f"docker-compose up: {done.stderr.strip()[-500:]}")
        return done.stdout + done.stderr

    def take_down(self):
        self.compose("down", "--volumes", "--timeout", "5")
