"""The local formation of one check: ``honcho start`` on free ports, with the check's own env file.

    formation = Formation(args)       # args as bench.harness.check parses them
    formation.start()                 # returns once N instances are registered and the proxy routes to all
    formation.proxy_url, formation.redis_url
    formation.exited()                # None while honcho runs: the check stops at once when it does not
    formation.stop()                  # honcho, every instance and worker

With ``--front nginx`` (or another of bench.harness.frontdoor's) the Procfile's
proxy is left out and that front door serves ``proxy_url`` instead, over the web
instances' fixed ports: honcho's ``-p`` base + 100 per type before ``web`` + 1 per
instance. HostsFormation (bench.harness.hosts) has the same interface across
network namespaces.
"""
import os
import secrets
import shutil

import requests

from bench.harness.frontdoor import FrontDoor
from bench.harness.launch import process_env, start
from bench.harness.replicated import Replicated
from bench.paths import BIN
from bench.runfolder import FORMATION_ENV, FORMATION_LOG, REDIS_DATA, REPLICATION, SCRATCH, write_json
from scaler.processes import free_port, honcho_base_port, stop_tree, wait_until
from common.redis_client import connect
from common.registry import Registry

UPLOAD_MAX_BYTES = 64 * 1024 * 1024  # the largest upload; the proxy's body limit leaves room for multipart


def healthy_backends(proxy_url):
    """How many backends the proxy at ``proxy_url`` routes to."""
    metrics = requests.get(f"{proxy_url}/_proxy/metrics", timeout=2).json()
    return sum(1 for b in metrics["backends"] if b["state"] == "up")


def web_state_env(args):
    """Where sessions and uploads go, for every web instance of one formation (HostsFormation's too).

    Called once per formation: one secret for all of it, never one per process, since a
    process's own random secret would be state of its own, and no other could read its cookies.
    """
    return {"SESSION_STORE": args.session_store, "SECRET_KEY": secrets.token_hex(32),
            "SCRATCH": args.scratch, "SCRATCH_DIR": args.report_dir / SCRATCH, "UPLOAD_MAX_BYTES": UPLOAD_MAX_BYTES}


def proxy_state_env(args):
    """The proxy's side of it: room for the largest upload, and with --proxy-sticky visitors pinned to instances."""
    return {"PROXY_MAX_BODY": UPLOAD_MAX_BYTES + 65536, "PROXY_STICKY": "cookie" if args.proxy_sticky else "none"}


def remove_scratch(args):
    """What SCRATCH=keep left behind: the scratch folders go with their formation."""
    shutil.rmtree(args.report_dir / SCRATCH, ignore_errors=True)


class Formation:
    """The formation ``honcho start`` runs for one check, on free ports."""

    def __init__(self, args):
        self.args = args
        self.redis_port, self.proxy_port = free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.proxy_url = f"http://127.0.0.1:{self.proxy_port}"
        self.honcho = None
        self.front = None  # a FrontDoor, with --front other than factor6
        self.replicated = None  # with --redis sentinel: bench.harness.replicated.Replicated
        self.client_env = {}  # what a client of this formation must be given to find its Redis

    def start(self, abort=None):
        """Returns once the formation serves; ``abort`` may raise to stop waiting (see wait_until)."""
        out = self.args.report_dir
        env_file = out / FORMATION_ENV
        front = getattr(self.args, "front", "factor6")
        proxy = ["proxy"] if front == "factor6" else []
        types = ["redis", "web", *proxy, "scaler"] + ["autoscale"] * bool(self.args.autoscale)
        concurrency = f"web={self.args.web}"
        base = honcho_base_port(types=len(types) + 2)
        if getattr(self.args, "redis", "single") == "sentinel":
            self.replicated = Replicated(self.redis_port, base, types)
            types, concurrency = self.replicated.types, f"{concurrency},{self.replicated.concurrency}"
            self.client_env = {k: str(v) for k, v in self.replicated.env.items()}
            write_json(out / REPLICATION, self.replicated.describe())
        if front != "factor6":  # installed (or Missing) before anything starts
            web = [f"127.0.0.1:{base + 100 * types.index('web') + i}" for i in range(self.args.web)]
            self.front = FrontDoor(front, web, self.proxy_port, out).install()
        # honcho lets its env file override the shell's, so this file is the formation's whole config.
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {
            "PORT_REDIS": self.redis_port, "REDIS_DATA": out / REDIS_DATA, "PROXY_PORT": self.proxy_port,
            "HIT_MODE": self.args.mode, "WEB_WORKERS": self.args.workers, **self.autoscale_env(),
            "PROXY_STAMP_KEYS": int(self.args.hits != "keyless-retried"),
            **web_state_env(self.args), **proxy_state_env(self.args),
            "REDIS_PERSISTENCE": self.args.redis_persistence, **self.client_env,
        }.items()))
        self.honcho = start([BIN / "honcho", "start", "-e", env_file, "-p", base, "-c", concurrency, *types],
                            env=process_env(), log_path=out / FORMATION_LOG)
        client = connect(self.redis_url, env={**os.environ, **self.client_env})

        def still_running():
            if abort:
                abort()
            if self.honcho.poll() is not None:
                raise TimeoutError(f"honcho exited with {self.honcho.returncode} before the formation served")

        if self.replicated:
            self.replicated.wait_ready(abort=still_running)
        wait_until(lambda: len(Registry(client).instances()) == self.args.web, timeout=60,
                   what=f"{self.args.web} web instances", abort=still_running)
        if self.front:
            self.front.start(abort=still_running)
            return
        wait_until(lambda: healthy_backends(self.proxy_url) == self.args.web, timeout=30, what="the proxy",
                   abort=still_running)

    def autoscale_env(self):
        """The autoscaler's bounds and log; its other AUTOSCALE_* settings pass through from the shell."""
        if not self.args.autoscale:
            return {}
        return {"AUTOSCALE_MIN": self.args.web, "AUTOSCALE_MAX": max(self.args.autoscale, self.args.web),
                "AUTOSCALE_LOG": self.args.report_dir / "autoscale.jsonl"}

    def exited(self):
        """honcho's exit status once it has stopped (it stops the whole formation when one process exits), else None."""
        return self.honcho.poll() if self.honcho else None

    def stop(self):
        if self.front:
            self.front.stop()
        if self.honcho:
            stop_tree(self.honcho.pid)
        remove_scratch(self.args)

    def wrap(self, command):
        """Locust runs on this machine, told where the Sentinels are (HostsFormation puts it in a host of its own)."""
        return ["env", *(f"{k}={v}" for k, v in self.client_env.items()), *command] if self.client_env else command
