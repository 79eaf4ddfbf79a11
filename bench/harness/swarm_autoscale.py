"""``--autoscale`` on a Swarm stack: scaler/autoscale.py's loop on this machine, its count applied by Docker.

    autoscaling = SwarmAutoscale(spec, engine.client.services.get("f6123_web"), proxy_url, redis_url)
    autoscaling.start()      # a thread: every AUTOSCALE_INTERVAL, decide (scaler/policy.py), `docker service scale`
    autoscaling.stop()       # the loop ends, its lease let go

On honcho the autoscaler writes a desired count that the scaler process
applies. On a Swarm the orchestrator is the scaler: the same Autoscaler reads
the same signals (the proxy task's ``/_proxy/metrics``, the registry in the
stack's Valkey) and the same AUTOSCALE_* settings, and ``ServiceScale`` applies
each count with the Docker SDK's ``service.scale``. Every decision lands in the
report folder's autoscale.jsonl with the service's replicas and the web tasks
running then, and the Docker command where it scaled.
"""
import dataclasses
import os
import threading

from bench.harness.formation import autoscale_env
from common.redis_client import connect
from scaler.autoscale import Autoscaler, run
from scaler.config import AutoscaleConfig


class ServiceScale:
    """``apply`` for the Autoscaler: a Swarm service scaled to the count, and what it runs now, to record."""

    def __init__(self, service):
        self.service = service

    def __call__(self, count):
        self.service.reload()
        replicas = self.service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
        applied = {}
        if replicas != count:
            self.service.scale(count)
            applied = {"docker": f"docker service scale web={count}", "replicas_before": replicas}
        tasks = self.service.tasks(filters={"desired-state": "running"})
        running = sum(task["Status"]["State"] == "running" for task in tasks)
        return {**applied, "replicas": count, "tasks_running": running}


class SwarmAutoscale:
    """The autoscaler of one Swarm check, in a thread of the check's process."""

    def __init__(self, spec, service, proxy_url, redis_url):
        config = AutoscaleConfig.from_env({**os.environ, **{k: str(v) for k, v in autoscale_env(spec).items()}})
        self.config = dataclasses.replace(config, redis_url=redis_url, metrics_url=f"{proxy_url}/_proxy/metrics")
        self.client = connect(redis_url)
        self.autoscaler = Autoscaler(self.config, self.client, apply=ServiceScale(service))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=run, args=(self.autoscaler, self.stopping), name="autoscale",
                                       daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=30)
        self.client.close()
