"""The web processes' faults: crash, stop, freeze, reload and rescale gunicorn workers and masters.

    faults = ProcessFaults(client, record, background, stopping, choice, freeze_s=3.0)   # the engine's hooks
    faults.act("kill", "web.2")   # its event; a background follow-up times the recovery
    faults.stop()                 # thaws every frozen worker at once

The engine (bench/chaos/engine.py) holds one and hands it the actions named in
``vocabulary.PROCESS_ACTIONS``, each on a random target:

- ``kill``: SIGKILL a worker, a crash; its gunicorn master starts a replacement.
- ``term``: SIGTERM a worker, a graceful exit; replaced the same way.
- ``reload``: SIGHUP a master, which replaces all its workers gracefully.
- ``rolling``: reload every instance in turn, each once the previous serves again.
- ``freeze``: SIGSTOP a worker for ``freeze_s`` (longer than the proxy's timeout),
  then SIGCONT (a ``thaw`` follow-up). ``stop()`` thaws every frozen worker first.
- ``scale``: SIGTTIN or SIGTTOU a master: one worker more or less, within 1..``max_workers``.

Targets are found through the registry and the process tree (bench/chaos/targets.py);
workers are the master's children. Masters only ever get HUP, TTIN or TTOU: when
one exits, honcho stops the whole formation. Kill, term and reload are followed
by a ``recovery``, timed as bench/chaos/recovery.py says:

    {"action": "recovery", "target": "web.2", "pid": 4251, "outcome": "ok",
     "after": "kill", "recovery_s": 0.389, "replacement": [4263], "served_by": 4263}

``choice(name, default)`` is the engine's current call: its target ``rng``, and
what a person asked for (``manual``, the worker's ``pid``, a freeze's ``seconds``).
"""
import signal
import threading
import time

import psutil

from bench.chaos.recovery import serving_again
from bench.chaos.targets import local_master
from bench.chaos.vocabulary import DRY_RUN, end_of, lasting, manual_mark
from scaler.processes import is_alive
from scaler.formation import live_instances, workers_of

# Anything else sent to a master could make it exit, and honcho would then stop the formation.
MASTER_SIGNALS = frozenset({signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU})


class ProcessFaults:
    """The process actions; ``record``, ``background`` and ``choice`` are the engine's, ``stopping`` its stop event."""

    def __init__(self, client, record, background, stopping, choice, freeze_s=3.0, max_workers=4,
                 recovery_timeout=30.0, dry_run=False):
        self.client, self.record, self.background, self.stopping, self.choice = (client, record, background,
                                                                                 stopping, choice)
        self.freeze_s, self.max_workers, self.recovery_timeout, self.dry_run = (freeze_s, max_workers,
                                                                                recovery_timeout, dry_run)
        self.lock = threading.Lock()
        self.frozen = {}  # pid -> (instance, psutil.Process, monotonic time of the SIGSTOP, manual)
        self.roller = None  # the thread of the rolling reload under way

    def act(self, action, target=None):
        return getattr(self, action)(target)

    def stop(self):
        with self.lock:
            pids = list(self.frozen)
        for pid in pids:
            self.thaw(pid)

    def send(self, action, instance, proc, sig, **extra):
        """Sends sig to proc (a master or one of its workers) and records the event."""
        if proc.pid == instance.master and sig not in MASTER_SIGNALS:
            raise ValueError(f"refusing to send {sig.name} to master {proc.pid}")
        if self.dry_run:
            return self.record(action, instance, proc.pid, DRY_RUN, signal=sig.name, **extra)
        try:
            proc.send_signal(sig)  # psutil refuses if the pid was reused since proc was created
        except psutil.NoSuchProcess:
            return self.record(action, instance, proc.pid, "skipped: the process exited first", **extra)
        return self.record(action, instance, proc.pid, "ok", signal=sig.name, **extra)

    # -- targets ----------------------------------------------------------------------------

    def masters(self, target):
        """(instance, master process) for each registered instance on this host, by name."""
        instances = sorted(live_instances(self.client), key=lambda i: (i.name, i.address))
        found = [(inst, local_master(inst)) for inst in instances if target in (None, inst.name)]
        return [(inst, master) for inst, master in found if master]

    def pick_master(self, action, target):
        masters = self.masters(target)
        if not masters:
            return None, self.record(action, None, None, "skipped: no registered instance on this host")
        return self.choice("rng").choice(masters), None

    def pick_worker(self, action, target):
        with self.lock:
            frozen = set(self.frozen)
        candidates, chosen = [], self.choice("pid")
        for inst, _ in self.masters(target):
            workers = sorted((w for w in inst.workers if w.pid not in frozen and is_alive(w)
                              and chosen in (None, w.pid)), key=lambda w: w.pid)
            if workers:
                candidates.append((inst, workers))
        if not candidates:
            return None, None, self.record(action, None, None, "skipped: no running worker on this host")
        rng = self.choice("rng")
        inst, workers = rng.choice(candidates)
        return inst, rng.choice(workers), None

    # -- actions: each returns its event ----------------------------------------------------

    def kill(self, target):
        return self.signal_worker("kill", signal.SIGKILL, target)

    def term(self, target):
        return self.signal_worker("term", signal.SIGTERM, target)

    def signal_worker(self, action, sig, target):
        inst, worker, skipped = self.pick_worker(action, target)
        if skipped:
            return skipped
        before, started = {w.pid for w in inst.workers}, time.monotonic()
        event = self.send(action, inst, worker, sig)
        if event["outcome"] == "ok":
            self.background(self.recover, event, inst, {worker.pid}, before, started)
        return event

    def reload(self, target):
        picked, skipped = self.pick_master("reload", target)
        if skipped:
            return skipped
        inst, master = picked
        before, started = {w.pid for w in inst.workers}, time.monotonic()
        event = self.send("reload", inst, master, signal.SIGHUP)
        if event["outcome"] == "ok":
            self.background(self.recover, event, inst, before, before, started)
        return event

    def rolling(self, target):
        if self.roller and self.roller.is_alive():
            return self.record("rolling", None, None, "skipped: the previous rolling reload is still running")
        masters = self.masters(target)
        if not masters:
            return self.record("rolling", None, None, "skipped: no registered instance on this host")
        event = self.record("rolling", None, None, "ok", order=[inst.name for inst, _ in masters])
        self.roller = self.background(self.roll, masters)
        return event

    def roll(self, masters):
        for inst, master in masters:
            if self.stopping.is_set():
                return
            before, started = {w.pid for w in workers_of(inst.master)}, time.monotonic()
            event = self.send("reload", inst, master, signal.SIGHUP, part_of="rolling")
            if event["outcome"] == DRY_RUN:
                continue
            if event["outcome"] != "ok" or self.recover(event, inst, before, before, started)["outcome"] != "ok":
                return  # like a deploy, a rolling reload halts at the first instance that does not come back

    def freeze(self, target):
        inst, worker, skipped = self.pick_worker("freeze", target)
        if skipped:
            return skipped
        seconds = self.choice("seconds") or self.freeze_s
        # Registered before the SIGSTOP, so that stop() can never miss a frozen worker.
        with self.lock:
            self.frozen[worker.pid] = (inst, worker, time.monotonic(), self.choice("manual", False))
        event = self.send("freeze", inst, worker, signal.SIGSTOP, freeze_s=seconds, **lasting(seconds))
        if event["outcome"] == "ok":
            self.background(self.thaw_later, worker.pid, seconds)
        else:
            with self.lock:
                del self.frozen[worker.pid]
        return event

    def thaw_later(self, pid, seconds):
        self.stopping.wait(seconds)  # stop() cuts a freeze short
        self.thaw(pid)

    def thaw(self, pid):
        with self.lock:
            frozen = self.frozen.pop(pid, None)
        if frozen:  # else a concurrent thaw already did it
            inst, worker, stopped_at, manual = frozen
            self.send("thaw", inst, worker, signal.SIGCONT, **end_of("freeze"),
                      frozen_s=round(time.monotonic() - stopped_at, 3), **manual_mark(manual))

    def scale(self, target):
        picked, skipped = self.pick_master("scale", target)
        if skipped:
            return skipped
        inst, master = picked
        count = len(inst.workers)
        directions = [signal.SIGTTIN] * (count < self.max_workers) + [signal.SIGTTOU] * (count > 1)
        if not directions:
            return self.record("scale", inst, inst.master, f"skipped: max_workers={self.max_workers} leaves no room")
        return self.send("scale", inst, master, self.choice("rng").choice(directions), workers=count)

    def recover(self, cause, inst, replaced, before, started):
        """Waits until inst serves again without the replaced workers (``recovery``), and records how long it took."""
        found = serving_again(inst.address, inst.master, replaced, before, started, self.recovery_timeout)
        outcome = "ok" if found else f"error: not serving again within {self.recovery_timeout}s"
        return self.record("recovery", inst, cause["pid"], outcome, after=cause["action"], **(found or {}),
                           **manual_mark(cause.get("manual")))
