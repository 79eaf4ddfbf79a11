"""The chaos engine: a seeded schedule of faults, each handed to the family that makes it.

    $ python -m bench.chaos --rate 1 --mix kill=3,term --seed 7   # the CLI: bench/chaos/__main__.py

Embedded, e.g. in a locustfile (plain threads, so gevent's monkey-patching turns them into greenlets):

    monkey = ChaosMonkey(client, rate=1.0, mix="kill,term,reload,freeze", seed=7, log_path="chaos.jsonl")
    monkey.start(); ...; monkey.stop()
    monkey.events, monkey.summary()

Actions, by family (bench/chaos/vocabulary.py names them):

- ``kill``, ``term``, ``reload``, ``rolling``, ``freeze``, ``scale``: the web
  processes' gunicorn workers and masters (bench/chaos/processes.py). ``stop()``
  and Ctrl-C thaw every frozen worker first.
- ``redis-kill``, ``redis-restart``, ``redis-freeze``, ``redis-outage``: the formation's
  Redis server (bench/chaos/backing.py), timed through ``proxy_url`` to a hit served.
- ``primary-kill``, ``primary-freeze``: the replicated backing service's primary
  (bench/chaos/replicas.py).
- ``partition``, ``oneway``, ``latency``, ``loss``, ``reset``: network faults between
  ``--hosts`` hosts, given a ``network`` (bench/chaos/network.py); each lasting one is
  healed after its ``duration_s`` and by ``stop()``, with a ``heal`` follow-up.

The schedule fires one action every 1/rate seconds (a fixed interval, so a run of
d seconds makes d*rate actions; ``next_due`` makes up for a slow action). The seed drives two random streams, one for the
sequence of actions and one for the targets, so a seed replays the same actions,
and the same targets on a formation of the same shape. Network faults pick
their hosts from a third stream, the network's own (bench/chaos/network.py).
Backing actions have a stream of their own, which decides when one takes a
turn: the action stream is drawn every turn all the same, so adding them to a
mix leaves every other turn's action as it was.

Every action, and every follow-up (``recovery`` after kill, term, reload and the
backing actions; ``thaw`` after a freeze, ``restore`` after an outage), is an event, kept in memory and appended as a JSON line
to ``log_path``. A freeze is a lasting fault (bench/chaos/vocabulary.py): it
carries ``duration_s``, and its thaw ``"after": "freeze"``.

    {"time": 1700000000.1, "action": "kill", "target": "web.2", "pid": 4251, "outcome": "ok", "signal": "SIGKILL"}
    {"time": 1700000000.5, "action": "recovery", "target": "web.2", "pid": 4251, "outcome": "ok",
     "after": "kill", "recovery_s": 0.389, "replacement": [4263], "served_by": 4263}

``outcome`` is ``ok``, ``skipped: <reason>`` or ``error: <what>``; ``recovery_s``
is timed as bench/chaos/recovery.py says. The families get the engine's hooks:
``_record`` (an event), ``_in_background`` (a follow-up's thread), ``_stopping``
and ``_choice`` (the current act()'s rng and what a person asked for).

With ``apart_url`` (the formation's Redis URL) ``start()`` runs the schedule in a
process of its own (bench/chaos/apart.py), out of reach of this process's load;
its events come back here, as if made here, and ``act()`` still acts here.

By hand (the dashboard): ``act("freeze", "web.2", manual=True, pid=4251, seconds=10)``
acts on that worker, or on a target drawn from a stream of its own, so pressing
a button never shifts a seeded schedule; its events, follow-ups included, carry
``"manual": true``. ``journal("scale_web", desired=5)`` records a formation change
the engine does not make itself.
"""
import functools
import json
import os
import random
import statistics
import threading
import time
from collections import Counter, defaultdict

from bench.chaos.apart import ScheduleApart
from bench.chaos.backing import BackingFaults
from bench.chaos.processes import ProcessFaults
from bench.chaos.replicas import PrimaryFaults
from bench.chaos.vocabulary import (ACTIONS, BACKING_ACTIONS, DEFAULT_MIX, NETWORK_ACTIONS, REPLICA_ACTIONS,
                                    checked_mix, manual_mark, network_refusal, next_action, parse_mix)
from common.settings import sentinels

APART_GRACE_S = 15.0  # past recovery_timeout, for a schedule apart to thaw, heal and say its summary


def next_due(due, interval, now):
    """When the schedule's next action is due, the last having been due at ``due`` and ended at ``now``.

    One interval on; after a slow action the next comes sooner, so the run keeps its rate. A longer stall
    is not made up in a burst: at most one interval is carried over (tests/test_chaos.py shows both)."""
    return max(due + interval, now - interval)


class ChaosMonkey:
    """Acts on the formation that registers in ``client``'s Redis; see the module docstring.

    ``act()`` is meant to be called from one thread at a time (the schedule's, or yours
    when not started), so that the seeded random streams stay reproducible.
    """

    def __init__(self, client, rate=1.0, mix=DEFAULT_MIX, seed=None, log_path=None, freeze_s=3.0,
                 max_workers=4, recovery_timeout=30.0, dry_run=False, on_event=None, network=None, proxy_url=None,
                 outage_s=3.0, apart_url=None):
        self.client, self.rate, self.log_path, self.network = client, rate, log_path, network
        self.mix = parse_mix(mix) if isinstance(mix, str) else checked_mix(mix)
        refusal = network_refusal(self.mix) if network is None else network.refusal(self.mix)
        if network is not None and apart_url:
            refusal = "a schedule apart makes no network faults: give the network agent its own --layout"
        if refusal:
            raise ValueError(refusal)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.recovery_timeout, self.on_event = recovery_timeout, on_event
        # Separate streams: how many random choices a target takes must not shift the action sequence.
        self._action_rng = random.Random(f"{self.seed}:actions")
        self._target_rng = random.Random(f"{self.seed}:targets")
        self._backing_rng = random.Random(f"{self.seed}:backing")
        self._manual_rng = random.Random()  # buttons draw here, never from the seeded streams
        self._call = threading.local()  # the current act()'s choices: rng, manual, pid, seconds
        self._lock = threading.Lock()
        self._events = []
        self._background = []  # threads measuring a recovery, thawing, or rolling
        self._stopping = threading.Event()
        self._scheduler = None
        self._scheduled = [None, None]  # monotonic times the schedule started and stopped
        self._processes = ProcessFaults(client, self._record, self._in_background, self._stopping, self._choice,
                                        freeze_s, max_workers, recovery_timeout, dry_run)
        kwargs = client.connection_pool.connection_kwargs
        self.backing = BackingFaults(self._record, self._in_background, self._stopping, kwargs.get("port", 6379),
                                     proxy_url, kwargs.get("host", "127.0.0.1"), freeze_s, outage_s,
                                     recovery_timeout, dry_run)
        self._replicas = PrimaryFaults(sentinels(os.environ), self._record, self._in_background, self._stopping)
        self._apart = apart_url and ScheduleApart(
            functools.partial(self._keep, logged=True), redis_url=apart_url, rate=rate, mix=self.mix, seed=self.seed,
            freeze_s=freeze_s, outage_s=outage_s, max_workers=max_workers, log=log_path, proxy_url=proxy_url,
            dry_run=dry_run)

    # -- public API --------------------------------------------------------------------------

    @property
    def events(self):
        with self._lock:
            return [dict(event) for event in self._events]

    def start(self, since=None):
        """Starts the schedule; ``since``, the wall-clock time it began elsewhere, keeps that beat (a schedule
        apart keeps its engine's: its start-up costs no turn beyond the one interval carried over)."""
        if self.rate <= 0:
            raise ValueError("rate must be > 0 actions per second")
        now = time.time()
        since = now if since is None else since
        self._scheduled = [time.monotonic() - (now - since), None]
        if self._apart:
            self._apart.start(since)
            return self
        self._scheduler = threading.Thread(target=self._schedule, args=(self._scheduled[0],), name="chaos-schedule",
                                           daemon=True)
        self._scheduler.start()
        self._in_background(self._replicas.observe)
        return self

    def stop(self):
        """Ends the schedule, thaws every frozen worker at once, then lets pending recovery
        measurements finish (each is bounded by recovery_timeout)."""
        self._stopping.set()
        if self._scheduled[0] is not None:
            self._scheduled[1] = self._scheduled[1] or time.monotonic()
        if self._apart:
            self._apart.stop(self.recovery_timeout + APART_GRACE_S)
        if self._scheduler:
            self._scheduler.join()
        self._processes.stop()
        for fault in self.network.active() if self.network else ():
            self._heal(fault)
        self._replicas.stop()
        for thread in self._pending():
            thread.join(self.recovery_timeout)

    def busy(self):
        """True while a follow-up (recovery, thaw, rolling) is still running."""
        return bool(self._pending())

    def act(self, action=None, target=None, manual=False, pid=None, seconds=None):
        """Performs one action now, the next from the mix unless named, on a random instance or
        the one named ``target``; returns its event. ``manual``: a person's, drawn from no seeded
        stream; ``pid``: that worker of the target; ``seconds``: how long a freeze lasts."""
        if manual and not action:
            raise ValueError("a manual action must be named")
        action = action or self._next_action()
        if action not in ACTIONS:
            raise ValueError(f"unknown chaos action {action!r}; choose from {', '.join(ACTIONS)}")
        self._call.current = {"rng": self._manual_rng if manual else self._target_rng, "manual": manual,
                              "pid": pid, "seconds": seconds}
        try:
            if action in NETWORK_ACTIONS:
                return self._network_fault(action, target)
            if action in BACKING_ACTIONS:
                return self.backing.act(action)
            if action in REPLICA_ACTIONS:
                return self._replicas.act(action)
            return self._processes.act(action, target)
        except Exception as exc:  # Redis away, a process gone mid-way...: note it, keep the schedule going
            return self._record(action, None, None, f"error: {type(exc).__name__}: {exc}")
        finally:
            self._call.current = {}

    def journal(self, action, target=None, pid=None, outcome="ok", **extra):
        """Records a person's formation change (vocabulary.FORMATION_CHANGES) as a manual event."""
        return self._record(action, target, pid, outcome, **manual_mark(True), **extra)

    def summary(self):
        """Counts per action and outcome (ok/skipped/error); median and max recovery per action; the seconds
        the schedule ran (``scheduled_s``: rate x scheduled_s actions were asked for)."""
        events = self.events
        outcomes = defaultdict(Counter)
        recoveries = defaultdict(list)
        for event in events:
            outcomes[event["action"]][event["outcome"].partition(":")[0]] += 1
            if "recovery_s" in event:
                recoveries[event["after"]].append(event["recovery_s"])
        started, stopped = self._scheduled
        scheduled_s = round((stopped or time.monotonic()) - started, 3) if started else 0.0
        return {
            "seed": self.seed, "rate": self.rate, "mix": self.mix, "scheduled_s": scheduled_s,
            "actions": {action: dict(counts) for action, counts in sorted(outcomes.items())},
            "recovery": {action: {"count": len(times), "median_s": statistics.median(times), "max_s": max(times)}
                         for action, times in sorted(recoveries.items())},
        }

    # -- schedule and bookkeeping -----------------------------------------------------------

    def _next_action(self):
        return next_action(self.mix, self._action_rng, self._backing_rng)

    def _schedule(self, began):
        interval = 1.0 / self.rate
        due = began + interval
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            self.act()
            due = next_due(due, interval, time.monotonic())

    def _record(self, action, instance, pid, outcome, **extra):
        extra.update(manual_mark(self._choice("manual")))
        name = instance if isinstance(instance, str) or instance is None else instance.name
        event = {"time": time.time(), "action": action, "target": name, "pid": pid, "outcome": outcome, **extra}
        return self._keep(event, logged=False)

    def _keep(self, event, logged):
        """Keeps an event, logs it unless already logged (a schedule apart writes its own), and passes it on."""
        with self._lock:
            self._events.append(event)
            if self.log_path and not logged:
                with open(self.log_path, "a") as log:
                    log.write(json.dumps(event) + "\n")
        if self.on_event:
            self.on_event(dict(event))
        return event

    def _choice(self, name, default=None):
        """What the current act() was asked for (its rng, manual, pid, seconds); default in background threads."""
        return getattr(self._call, "current", {}).get(name, default)

    def _in_background(self, function, *args):
        thread = threading.Thread(target=function, args=args, name=f"chaos-{function.__name__}", daemon=True)
        with self._lock:
            self._background = [t for t in self._background if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _pending(self):
        with self._lock:
            return [t for t in self._background if t.is_alive()]

    # -- network faults: planned and healed by bench/chaos/network.py --------------------------

    def _network_fault(self, action, target):
        fault = self.network.plan(action, target)
        if isinstance(fault, str):
            return self._record(action, None, None, f"skipped: {fault}")
        started = time.monotonic()
        outcome = self.network.apply(fault)
        lasting = {"duration_s": fault.duration_s} if fault.undo else {}
        event = self._record(action, fault.target, None, outcome, hosts=fault.hosts, **lasting, **fault.details,
                             commands=fault.commands, undo=fault.undo)
        if outcome == "ok" and fault.undo:
            self._in_background(self._heal_later, fault, started)
        return event

    def _heal_later(self, fault, started):
        self._stopping.wait(fault.duration_s)  # stop() cuts a fault short
        self._heal(fault, started)

    def _heal(self, fault, started=None):
        outcome = self.network.heal(fault)
        if outcome != "skipped: already healed":
            lasted = {"lasted_s": round(time.monotonic() - started, 3)} if started else {}
            self._record("heal", fault.target, None, outcome, after=fault.action, hosts=fault.hosts, **lasted,
                         commands=fault.undo)
