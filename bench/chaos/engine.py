"""The chaos engine: crashes, freezes, reloads and rescales web processes on a seeded schedule.

    $ python -m bench.chaos --rate 1 --mix kill=3,term --seed 7   # the CLI: bench/chaos/__main__.py

Embedded, e.g. in a locustfile (plain threads, so gevent's monkey-patching turns them into greenlets):

    monkey = ChaosMonkey(client, rate=1.0, mix="kill,term,reload,freeze", seed=7, log_path="chaos.jsonl")
    monkey.start(); ...; monkey.stop()
    monkey.events, monkey.summary()

Actions, each on a random target:

- ``kill``: SIGKILL a worker, a crash; its gunicorn master starts a replacement.
- ``term``: SIGTERM a worker, a graceful exit; replaced the same way.
- ``reload``: SIGHUP a master, which replaces all its workers gracefully.
- ``rolling``: reload every instance in turn, each once the previous serves again.
- ``freeze``: SIGSTOP a worker for ``freeze_s`` (longer than the proxy's timeout),
  then SIGCONT. ``stop()`` and Ctrl-C thaw every frozen worker first.
- ``scale``: SIGTTIN or SIGTTOU a master: one worker more or less, within 1..``max_workers``.

The schedule fires one action every 1/rate seconds (a fixed interval, so a run of
d seconds makes d*rate actions). The seed drives two random streams, one for the
sequence of actions and one for the targets, so a seed replays the same actions,
and the same targets on a formation of the same shape.

Targets are found through the registry and the process tree (``targets``);
workers are the master's children. Masters only
ever get HUP, TTIN or TTOU: when one exits, honcho stops the whole formation.

Every action, and every follow-up (``recovery`` after kill, term and reload;
``thaw`` after freeze), is an event, kept in memory and appended as a JSON line
to ``log_path``:

    {"time": 1700000000.1, "action": "kill", "target": "web.2", "pid": 4251, "outcome": "ok", "signal": "SIGKILL"}
    {"time": 1700000000.5, "action": "recovery", "target": "web.2", "pid": 4251, "outcome": "ok",
     "after": "kill", "recovery_s": 0.389, "replacement": [4263], "served_by": 4263}

``outcome`` is ``ok``, ``skipped: <reason>`` or ``error: <what>``. ``recovery_s``
runs from the signal until a new worker exists under the master, none of the
replaced ones does, and a direct ``GET /healthz`` is answered by a live worker.
"""
import json
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter, defaultdict

import psutil

from bench.chaos.replicas import PrimaryFaults
from bench.chaos.targets import healthz_pid, local_master
from bench.chaos.vocabulary import ACTIONS, DEFAULT_MIX, REPLICA_ACTIONS, checked_mix, parse_mix
from scaler.processes import is_alive
from web.config import sentinels
from web.formation import live_instances, workers_of

# Anything else sent to a master could make it exit, and honcho would then stop the formation.
MASTER_SIGNALS = frozenset({signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU})
DRY_RUN = "skipped: dry run"
NO_REPLACEMENT_S = 5.0  # serving without a new worker this long after the signal: none is coming
POLL_S = 0.05


class ChaosMonkey:
    """Acts on the formation that registers in ``client``'s Redis; see the module docstring.

    ``act()`` is meant to be called from one thread at a time (the schedule's, or yours
    when not started), so that the seeded random streams stay reproducible.
    """

    def __init__(self, client, rate=1.0, mix=DEFAULT_MIX, seed=None, log_path=None, freeze_s=3.0,
                 max_workers=4, recovery_timeout=30.0, dry_run=False, on_event=None):
        self.client, self.rate, self.log_path = client, rate, log_path
        self.mix = parse_mix(mix) if isinstance(mix, str) else checked_mix(mix)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.freeze_s, self.max_workers, self.recovery_timeout = freeze_s, max_workers, recovery_timeout
        self.dry_run, self.on_event = dry_run, on_event
        # Separate streams: how many random choices a target takes must not shift the action sequence.
        self._action_rng = random.Random(f"{self.seed}:actions")
        self._target_rng = random.Random(f"{self.seed}:targets")
        self._lock = threading.Lock()
        self._events = []
        self._frozen = {}  # pid -> (instance, psutil.Process, monotonic time of the SIGSTOP)
        self._background = []  # threads measuring a recovery, thawing, or rolling
        self._roller = None
        self._stopping = threading.Event()
        self._scheduler = None
        self._replicas = PrimaryFaults(sentinels(os.environ), self._record, self._in_background, self._stopping)

    # -- public API --------------------------------------------------------------------------

    @property
    def events(self):
        with self._lock:
            return [dict(event) for event in self._events]

    def start(self):
        if self.rate <= 0:
            raise ValueError("rate must be > 0 actions per second")
        self._scheduler = threading.Thread(target=self._schedule, name="chaos-schedule", daemon=True)
        self._scheduler.start()
        self._in_background(self._replicas.observe)
        return self

    def stop(self):
        """Ends the schedule, thaws every frozen worker at once, then lets pending recovery
        measurements finish (each is bounded by recovery_timeout)."""
        self._stopping.set()
        if self._scheduler:
            self._scheduler.join()
        self._thaw_all()
        self._replicas.stop()
        for thread in self._pending():
            thread.join(self.recovery_timeout)

    def busy(self):
        """True while a follow-up (recovery, thaw, rolling) is still running."""
        return bool(self._pending())

    def act(self, action=None, target=None):
        """Performs one action now, the next from the mix unless named, on a random instance or
        the one named ``target``; returns its event."""
        action = action or self._action_rng.choices(list(self.mix), weights=list(self.mix.values()))[0]
        if action not in ACTIONS:
            raise ValueError(f"unknown chaos action {action!r}; choose from {', '.join(ACTIONS)}")
        try:
            if action in REPLICA_ACTIONS:
                return self._replicas.act(action)
            return getattr(self, f"_{action}")(target)
        except Exception as exc:  # Redis away, a process gone mid-way...: note it, keep the schedule going
            return self._record(action, None, None, f"error: {type(exc).__name__}: {exc}")

    def summary(self):
        """Counts per action and outcome (ok/skipped/error); median and max recovery per action."""
        events = self.events
        outcomes = defaultdict(Counter)
        recoveries = defaultdict(list)
        for event in events:
            outcomes[event["action"]][event["outcome"].partition(":")[0]] += 1
            if "recovery_s" in event:
                recoveries[event["after"]].append(event["recovery_s"])
        return {
            "seed": self.seed, "rate": self.rate, "mix": self.mix,
            "actions": {action: dict(counts) for action, counts in sorted(outcomes.items())},
            "recovery": {action: {"count": len(times), "median_s": statistics.median(times), "max_s": max(times)}
                         for action, times in sorted(recoveries.items())},
        }

    # -- schedule and bookkeeping -----------------------------------------------------------

    def _schedule(self):
        interval = 1.0 / self.rate
        due = time.monotonic() + interval
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            self.act()
            due = max(due + interval, time.monotonic())  # after a slow action, carry on rather than burst

    def _record(self, action, instance, pid, outcome, **extra):
        event = {"time": time.time(), "action": action, "target": instance.name if instance else None,
                 "pid": pid, "outcome": outcome, **extra}
        with self._lock:
            self._events.append(event)
            if self.log_path:
                with open(self.log_path, "a") as log:
                    log.write(json.dumps(event) + "\n")
        if self.on_event:
            self.on_event(dict(event))
        return event

    def _in_background(self, function, *args):
        thread = threading.Thread(target=function, args=args, name=f"chaos-{function.__name__}", daemon=True)
        with self._lock:
            self._background = [t for t in self._background if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _pending(self):
        with self._lock:
            return [t for t in self._background if t.is_alive()]

    def _signal(self, action, instance, proc, sig, **extra):
        """Sends sig to proc (a master or one of its workers) and records the event."""
        if proc.pid == instance.master and sig not in MASTER_SIGNALS:
            raise ValueError(f"refusing to send {sig.name} to master {proc.pid}")
        if self.dry_run:
            return self._record(action, instance, proc.pid, DRY_RUN, signal=sig.name, **extra)
        try:
            proc.send_signal(sig)  # psutil refuses if the pid was reused since proc was created
        except psutil.NoSuchProcess:
            return self._record(action, instance, proc.pid, "skipped: the process exited first", **extra)
        return self._record(action, instance, proc.pid, "ok", signal=sig.name, **extra)

    # -- targets ----------------------------------------------------------------------------

    def _masters(self, target):
        """(instance, master process) for each registered instance on this host, by name."""
        instances = sorted(live_instances(self.client), key=lambda i: (i.name, i.address))
        found = [(inst, local_master(inst)) for inst in instances if target in (None, inst.name)]
        return [(inst, master) for inst, master in found if master]

    def _pick_master(self, action, target):
        masters = self._masters(target)
        if not masters:
            return None, self._record(action, None, None, "skipped: no registered instance on this host")
        return self._target_rng.choice(masters), None

    def _pick_worker(self, action, target):
        with self._lock:
            frozen = set(self._frozen)
        candidates = []
        for inst, _ in self._masters(target):
            workers = sorted((w for w in inst.workers if w.pid not in frozen and is_alive(w)), key=lambda w: w.pid)
            if workers:
                candidates.append((inst, workers))
        if not candidates:
            return None, None, self._record(action, None, None, "skipped: no running worker on this host")
        inst, workers = self._target_rng.choice(candidates)
        return inst, self._target_rng.choice(workers), None

    # -- actions: each returns its event ----------------------------------------------------

    def _kill(self, target):
        return self._signal_worker("kill", signal.SIGKILL, target)

    def _term(self, target):
        return self._signal_worker("term", signal.SIGTERM, target)

    def _signal_worker(self, action, sig, target):
        inst, worker, skipped = self._pick_worker(action, target)
        if skipped:
            return skipped
        before, started = {w.pid for w in inst.workers}, time.monotonic()
        event = self._signal(action, inst, worker, sig)
        if event["outcome"] == "ok":
            self._in_background(self._recover, event, inst, {worker.pid}, before, started)
        return event

    def _reload(self, target):
        picked, skipped = self._pick_master("reload", target)
        if skipped:
            return skipped
        inst, master = picked
        before, started = {w.pid for w in inst.workers}, time.monotonic()
        event = self._signal("reload", inst, master, signal.SIGHUP)
        if event["outcome"] == "ok":
            self._in_background(self._recover, event, inst, before, before, started)
        return event

    def _rolling(self, target):
        if self._roller and self._roller.is_alive():
            return self._record("rolling", None, None, "skipped: the previous rolling reload is still running")
        masters = self._masters(target)
        if not masters:
            return self._record("rolling", None, None, "skipped: no registered instance on this host")
        event = self._record("rolling", None, None, "ok", order=[inst.name for inst, _ in masters])
        self._roller = self._in_background(self._roll, masters)
        return event

    def _roll(self, masters):
        for inst, master in masters:
            if self._stopping.is_set():
                return
            before, started = {w.pid for w in workers_of(inst.master)}, time.monotonic()
            event = self._signal("reload", inst, master, signal.SIGHUP, part_of="rolling")
            if event["outcome"] == DRY_RUN:
                continue
            if event["outcome"] != "ok" or self._recover(event, inst, before, before, started)["outcome"] != "ok":
                return  # like a deploy, a rolling reload halts at the first instance that does not come back

    def _freeze(self, target):
        inst, worker, skipped = self._pick_worker("freeze", target)
        if skipped:
            return skipped
        # Registered before the SIGSTOP, so that stop() can never miss a frozen worker.
        with self._lock:
            self._frozen[worker.pid] = (inst, worker, time.monotonic())
        event = self._signal("freeze", inst, worker, signal.SIGSTOP, freeze_s=self.freeze_s)
        if event["outcome"] == "ok":
            self._in_background(self._thaw_later, worker.pid)
        else:
            with self._lock:
                del self._frozen[worker.pid]
        return event

    def _thaw_later(self, pid):
        self._stopping.wait(self.freeze_s)  # stop() cuts a freeze short
        self._thaw(pid)

    def _thaw(self, pid):
        with self._lock:
            frozen = self._frozen.pop(pid, None)
        if frozen:  # else a concurrent _thaw already did it
            inst, worker, stopped_at = frozen
            self._signal("thaw", inst, worker, signal.SIGCONT, frozen_s=round(time.monotonic() - stopped_at, 3))

    def _thaw_all(self):
        with self._lock:
            pids = list(self._frozen)
        for pid in pids:
            self._thaw(pid)

    def _scale(self, target):
        picked, skipped = self._pick_master("scale", target)
        if skipped:
            return skipped
        inst, master = picked
        count = len(inst.workers)
        directions = [signal.SIGTTIN] * (count < self.max_workers) + [signal.SIGTTOU] * (count > 1)
        if not directions:
            return self._record("scale", inst, inst.master, f"skipped: max_workers={self.max_workers} leaves no room")
        return self._signal("scale", inst, master, self._target_rng.choice(directions), workers=count)

    # -- recovery ---------------------------------------------------------------------------

    def _recover(self, cause, inst, replaced, before, started):
        """Waits until inst serves again without the replaced workers, and records how long it took."""
        deadline = started + self.recovery_timeout
        while time.monotonic() < deadline:
            current = {w.pid for w in workers_of(inst.master)}
            if not current & replaced:
                served_by = healthz_pid(inst.address)
                if served_by in current and current - before:
                    return self._record("recovery", inst, cause["pid"], "ok", after=cause["action"],
                                        recovery_s=round(time.monotonic() - started, 3),
                                        replacement=sorted(current - before), served_by=served_by)
                if served_by in current and time.monotonic() - started > NO_REPLACEMENT_S:
                    # A reload under way when the signal came had already started the workers the
                    # master wants, so none replaces this one: serving again, nothing to time.
                    return self._record("recovery", inst, cause["pid"], "ok", after=cause["action"],
                                        replacement=[], served_by=served_by)
            time.sleep(POLL_S)
        return self._record("recovery", inst, cause["pid"], f"error: not serving again within {self.recovery_timeout}s",
                            after=cause["action"])
