"""The local formation of one check: ``honcho start`` on free ports, with the check's own env file.

    formation = HonchoFormation(FormationSpec(web=4, report_dir=out))   # bench.harness.model
    formation.start()                 # returns once N instances are registered and the proxy routes to all
    formation.proxy_url, formation.redis_url
    formation.exited()                # None while honcho runs: the check stops at once when it does not
    formation.stop()                  # honcho, every instance and worker

FrontDoorFormation (bench.harness.frontdoor) is this one with nginx or HAProxy
in place of the Procfile's proxy; HostsFormation (bench.harness.hosts) the same
interface across network namespaces.
"""
import os
import secrets
import shutil

import requests

from bench.harness.launch import process_env, start
from bench.harness.model import ChaosTarget
from bench.harness.replicated import Replicated
from bench.paths import BIN
from bench.runfolder import AUTOSCALE, FORMATION_ENV, FORMATION_LOG, REDIS_DATA, REPLICATION, SCRATCH, write_json
from scaler.formation import live_instances
from scaler.processes import free_port, honcho_base_port, stop_tree, wait_until
from common.redis_client import connect
from common.registry import Registry

UPLOAD_MAX_BYTES = 64 * 1024 * 1024  # the largest upload; the proxy's body limit leaves room for multipart


def healthy_backends(proxy_url):
    """How many backends the proxy at ``proxy_url`` routes to."""
    metrics = requests.get(f"{proxy_url}/_proxy/metrics", timeout=2).json()
    return sum(1 for b in metrics["backends"] if b["state"] == "up")


def web_state_env(spec):
    """Where sessions and uploads go, for every web instance of one formation (HostsFormation's too).

    Called once per formation: one secret for all of it, never one per process, since a
    process's own random secret would be state of its own, and no other could read its cookies.
    """
    return {"SESSION_STORE": spec.session_store, "SECRET_KEY": secrets.token_hex(32),
            "SCRATCH": spec.scratch, "SCRATCH_DIR": spec.report_dir / SCRATCH, "UPLOAD_MAX_BYTES": UPLOAD_MAX_BYTES}


def autoscale_env(spec):
    """The autoscaler's bounds and log (none without --autoscale); its other AUTOSCALE_* settings pass through from
    the shell. The Swarm formation's autoscaler (bench/harness/swarm_autoscale.py) reads the same."""
    if not spec.autoscale:
        return {}
    return {"AUTOSCALE_MIN": spec.web, "AUTOSCALE_MAX": max(spec.autoscale, spec.web),
            "AUTOSCALE_LOG": spec.report_dir / AUTOSCALE}


def proxy_state_env(spec):
    """The proxy's side of it: room for the largest upload, and with --proxy-sticky visitors pinned to instances."""
    return {"PROXY_MAX_BODY": UPLOAD_MAX_BYTES + 65536, "PROXY_STICKY": "cookie" if spec.proxy_sticky else "none"}


def remove_scratch(spec):
    """What SCRATCH=keep left behind: the scratch folders go with their formation."""
    shutil.rmtree(spec.report_dir / SCRATCH, ignore_errors=True)


def served(client):
    """The registry's live instances as the Formation protocol gives them: name, address, hits served."""
    return [{"name": i.name, "address": i.address, "served": i.served} for i in live_instances(client)]


class HonchoFormation:
    """The formation ``honcho start`` runs for one check, on free ports (bench.harness.model's Formation)."""

    chaos_target = ChaosTarget(embedded=True)  # every process is on this machine: Locust's monkey reaches them

    def __init__(self, spec, load=None):
        self.spec = spec
        self.redis_port, self.proxy_port = free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.proxy_url = f"http://127.0.0.1:{self.proxy_port}"
        self.honcho = None
        self.replicated = None  # with --redis sentinel: bench.harness.replicated.Replicated
        self.client_env = {}  # what a client of this formation must be given to find its Redis

    def types(self):
        """The Procfile's process types this formation runs."""
        return ["redis", "web", "proxy", "scaler"] + ["autoscale"] * bool(self.spec.autoscale)

    def start(self, abort=None):
        """Returns once the formation serves; ``abort`` may raise to stop waiting (see wait_until)."""
        spec, out = self.spec, self.spec.report_dir
        env_file = out / FORMATION_ENV
        types = self.types()
        concurrency = f"web={spec.web}"
        base = honcho_base_port(types=len(types) + 2)
        if spec.redis == "sentinel":
            self.replicated = Replicated(self.redis_port, base, types)
            types, concurrency = self.replicated.types, f"{concurrency},{self.replicated.concurrency}"
            self.client_env = {k: str(v) for k, v in self.replicated.env.items()}
            write_json(out / REPLICATION, self.replicated.describe())
        self.prepare([f"127.0.0.1:{base + 100 * types.index('web') + i}" for i in range(spec.web)])
        # honcho lets its env file override the shell's, so this file is the formation's whole config.
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {
            "PORT_REDIS": self.redis_port, "REDIS_DATA": out / REDIS_DATA, "PROXY_PORT": self.proxy_port,
            "HIT_MODE": spec.mode, "WEB_WORKERS": spec.workers, **autoscale_env(spec),
            "PROXY_STAMP_KEYS": int(spec.hits != "keyless-retried"),
            **web_state_env(spec), **proxy_state_env(spec),
            "REDIS_PERSISTENCE": spec.redis_persistence, **self.client_env,
        }.items()))
        self.honcho = start([BIN / "honcho", "start", "-e", env_file, "-p", base, "-c", concurrency, *types],
                            env=process_env(), log_path=out / FORMATION_LOG)
        client = self.client()

        def still_running():
            if abort:
                abort()
            if self.honcho.poll() is not None:
                raise TimeoutError(f"honcho exited with {self.honcho.returncode} before the formation served")

        if self.replicated:
            self.replicated.wait_ready(abort=still_running)
        wait_until(lambda: len(Registry(client).instances()) == spec.web, timeout=60,
                   what=f"{spec.web} web instances", abort=still_running)
        self.serve(still_running)

    def prepare(self, web_addresses):
        """Before honcho starts, with the web instances' fixed addresses: nothing here (a front door installs)."""

    def serve(self, abort):
        """Returns once the front door routes to every instance."""
        wait_until(lambda: healthy_backends(self.proxy_url) == self.spec.web, timeout=30, what="the proxy",
                   abort=abort)

    def client(self):
        return connect(self.redis_url, env={**os.environ, **self.client_env})

    def exited(self):
        """honcho's exit status once it has stopped (it stops the whole formation when one process exits), else None."""
        return self.honcho.poll() if self.honcho else None

    def instances(self):
        return served(self.client())

    def stop(self):
        if self.honcho:
            stop_tree(self.honcho.pid)
        remove_scratch(self.spec)

    def wrap(self, command):
        """Locust runs on this machine, told where the Sentinels are (HostsFormation puts it in a host of its own)."""
        return ["env", *(f"{k}={v}" for k, v in self.client_env.items()), *command] if self.client_env else command
