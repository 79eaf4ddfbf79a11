"""The Procfile's ``autoscale`` process type: proxy metrics and CPU in, the desired web count out.

    $ AUTOSCALE_MIN=2 AUTOSCALE_MAX=6 honcho start -c web=2
    autoscale: web between 2 and 6, 8 in flight per instance; metrics from http://127.0.0.1:8000/_proxy/metrics
    autoscale: 12:00:03.512 up 2 -> 5: 40.0 in flight on 2 instances is 20.0 each, over 9.6 (target 8 +20%):
               5 instances | 412 rps, p95 180 ms, cpu 97%
    $ honcho start          # without AUTOSCALE_MAX it idles until stopped, as chaos does without CHAOS_RATE

Every ``AUTOSCALE_INTERVAL`` it reads ``GET /_proxy/metrics`` (in flight, rate,
p95) and the host's CPU, and hands them to scaler/policy.py's ``decide``; a new
count goes to ``factor6:desired:web``, where the scaler picks it up. Printed:
every change, and each new kind of hold (cooling down, waiting to go down...)
once; ``AUTOSCALE_LOG`` gets every decision, holds included, as a JSON line with
its inputs. The count is written on every sample: while an autoscaler runs, it
owns the count. Its lease, ``factor6:autoscale``, keeps a second autoscaler idle
and makes ``scripts/scale`` refuse, rather than set a count undone a moment later.

On an orchestrator the count is applied by ``apply``, a callable the harness
passes in (bench/harness/swarm_autoscale.py: ``docker service scale``); what it
returns is recorded beside the decision. This package never imports Docker.
"""
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.request

import psutil
from redis.exceptions import RedisError

from scaler.config import AutoscaleConfig
from scaler.policy import HOLD, Policy, Sample, State, decide
from scaler.shared import Desired, Lease
from common.clock import clock
from common.redis_client import connect
from common.registry import Registry
from common.schema import AUTOSCALE_KEY

log = logging.getLogger("autoscale")


def read_sample(url, now, timeout=1.0):
    """The proxy's totals and the host CPU since the previous call, as a policy Sample."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy
    with direct.open(url, timeout=timeout) as response:
        totals = json.load(response)["totals"]
    return Sample(time=now, in_flight=totals["in_flight"], rate_rps=totals["rate_rps"], p95_ms=totals["p95_ms"],
                  cpu_percent=psutil.cpu_percent(None))


class Autoscaler:
    """Decides on each sample, writes each change, logs each decision."""

    def __init__(self, config, client, apply=None):
        """``apply(count) -> dict``: None on honcho (the scaler applies the count), else it applies the count
        itself and returns what to record with the decision (the tasks running, the command)."""
        self.config, self.client, self.apply = config, client, apply
        self.policy = Policy.from_config(config)
        self.desired, self.lease = Desired(client), Lease(client, AUTOSCALE_KEY, ttl=max(3.0, 4 * config.interval))
        self.state, self.shown_kind = None, None
        self.journal = open(config.log_path, "a", encoding="utf-8") if config.log_path else None

    def record(self, row, line=None):
        if line:
            log.info("%s", line)
        if self.journal:
            self.journal.write(json.dumps(row) + "\n")
            self.journal.flush()

    def begin(self):
        """Start from the registered count, within bounds, so a restarted autoscaler does not jump."""
        registered = len(Registry(self.client).instances())
        self.state = State(desired=self.policy.clamp(registered))
        self.record({"time": time.time(), "action": "start", "desired": self.state.desired, "registered": registered},
                    f"{clock(time.time())} start at {self.state.desired} ({registered} registered)")

    def step(self, now):
        if not self.lease.hold({"pid": os.getpid(), "minimum": self.policy.minimum, "maximum": self.policy.maximum,
                                "desired": self.state.desired if self.state else None}):
            return  # another autoscaler decides
        if self.state is None:
            self.begin()
        self.state, decision = decide(self.policy, self.state, read_sample(self.config.metrics_url, now))
        # Written every time, not on change only: the scaler clears the count when it starts.
        self.desired.set(self.state.desired)
        applied = self.apply(self.state.desired) if self.apply else {}
        wall = time.time()
        line = None
        if decision.action != HOLD or decision.kind != self.shown_kind:
            sample = decision.sample
            line = (f"{clock(wall)} {decision.action} {decision.previous} -> {decision.desired}: {decision.reason}"
                    f" | {sample.rate_rps:.0f} rps, p95 {sample.p95_ms or 0:.0f} ms, cpu {sample.cpu_percent:.0f}%")
            self.shown_kind = decision.kind
        self.record({**decision.to_dict(), "time": wall, **applied}, line)

    def stop(self):
        try:
            self.lease.release()
        except (RedisError, OSError):
            pass  # it expires by itself
        if self.journal:
            self.journal.close()


def main(env=os.environ):
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="autoscale: %(message)s")
    try:
        config = AutoscaleConfig.from_env(env)
    except ValueError as exc:
        log.error("bad setting: %s", exc)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    if not config.enabled:
        log.info("off; set AUTOSCALE_MAX (and AUTOSCALE_MIN) to let it scale web, e.g. AUTOSCALE_MAX=6")
        stopping.wait()
        return 0
    log.info("web between %d and %d, %g in flight per instance; metrics from %s", config.minimum, config.maximum,
             config.target, config.metrics_url)
    run(Autoscaler(config, connect(config.redis_url)), stopping)
    return 0


def run(autoscaler, stopping):
    """A decision every AUTOSCALE_INTERVAL until ``stopping`` (a threading.Event) is set, then the lease let go."""
    psutil.cpu_percent(None)  # the first reading only starts the measurement
    failing = False
    while not stopping.wait(autoscaler.config.interval):
        try:
            autoscaler.step(time.monotonic())
            if failing:
                log.info("deciding again")
            failing = False
        # The proxy or Redis not up (yet), or away for a while: no decision, so the count written last stands.
        except (RedisError, OSError, ValueError, KeyError) as exc:
            if not failing:
                log.warning("no decision: %s", exc)
            failing = True
    autoscaler.stop()


if __name__ == "__main__":
    sys.exit(main())
