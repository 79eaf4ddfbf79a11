"""The probed app's instances as the run sees them: starts, kills, rolling restarts and stops, each journaled in
factor6's chaos vocabulary (chaos.jsonl) and sampled (formation.jsonl), as the Procfile formation's are.

    formation = Formation(machines, registry=None)   # machines: bench/probe/instances.py's Machines
    web = formation.start()                          # ready, sampled (and registered, with a proxy in front)
    formation.end(web, kill=True)                    # SIGKILL of its tree; kill=False: SIGTERM
    formation.rolling()                              # every instance replaced, journaled from start to end
    formation.write(run_folder)
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.chaos.vocabulary import end_of, lasting
from bench.runfolder import write_jsonl
from common.registry import Heartbeat


class Formation:
    """The app's instances as the run sees them: starts, kills and stops, each journaled in the vocabulary.

    ``registry`` (a common.registry.Registry), when the proxy is in front: each ready instance registered
    with a heartbeat, deregistered before it stops, as the demo app's gunicorn hooks do for its own."""

    def __init__(self, machines, registry=None):
        self.machines, self.registry = machines, registry
        self.events, self.samples, self.beats = [], [], {}
        self.lock = threading.Lock()

    def event(self, action, target, pid=None, **extra):
        with self.lock:
            self.events.append({"time": time.time(), "action": action, "target": target, "pid": pid, "outcome": "ok",
                                **extra})

    def sample(self):
        running = self.machines.running()
        with self.lock:
            self.samples.append({"time": time.time(), "names": [i.name for i in running], "instances": len(running),
                                 "workers": len(running)})

    def start(self):
        instance = self.machines.start()
        if self.registry:
            self.beats[instance.name] = Heartbeat(self.registry, {"name": instance.name, "address": address(instance),
                                                                  "pid": instance.popen.pid}).start()
        self.sample()
        return instance

    def end(self, instance, kill):
        beat = self.beats.pop(instance.name, None)
        if beat:
            beat.stop()
        (self.machines.kill if kill else self.machines.stop)(instance)
        self.sample()

    def start_many(self, count):
        """``count`` new instances started side by side, returned once all are ready."""
        with ThreadPoolExecutor(max_workers=count) as pool:
            return [future.result() for future in [pool.submit(self.start) for _ in range(count)]]

    def rolling(self):
        """Restart every instance, as a platform's daily restart does: as many new ones started (fresh disks),
        then every old one stopped (SIGTERM); journaled as the vocabulary's ``rolling``, from start to end."""
        old = self.machines.running()
        self.event("rolling", self.machines.process, **lasting(None))
        self.start_many(len(old))
        with ThreadPoolExecutor(max_workers=len(old)) as pool:
            list(pool.map(lambda instance: self.end(instance, kill=False), old))
        self.event("rolling", self.machines.process, **end_of("rolling"))

    def write(self, out):
        write_jsonl(out / "chaos.jsonl", self.events)
        write_jsonl(out / "formation.jsonl", self.samples)


def address(instance):
    return f"127.0.0.1:{instance.port}"
