"""The chaos monkey: crashes, freezes, reloads and rescales web processes while load runs.

    $ python -m bench.chaos --rate 1 --mix kill=3,term=1,reload=1,freeze=1,scale=1 --seed 7 --duration 60 --log chaos.jsonl
    chaos: 1 action/s at fixed intervals, mix kill=3,term=1,reload=1,freeze=1,scale=1, seed 7
    12:00:01.002 kill     web.2 pid 4251 ok signal=SIGKILL
    12:00:01.391 recovery web.2 pid 4251 ok after=kill recovery_s=0.389 replacement=[4263] served_by=4263
    $ python -m bench.chaos once freeze --target web.1     # one action, then wait for its follow-up
    $ CHAOS_RATE=1 CHAOS_SEED=7 honcho start -c web=4      # the Procfile's chaos type, idle without CHAOS_RATE

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

Targets are found through the registry and the process tree: an instance counts
only if its registered master runs on this host, is gunicorn and listens on the
registered port (an entry outlives its process by up to its TTL, and the pid may
by then belong to anything); workers are that master's children. Masters only
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
import argparse
import http.client
import json
import os
import random
import signal
import statistics
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict

import psutil

from bench.processes import is_alive
from web.config import redis_url
from web.formation import live_instances, workers_of
from web.redis_client import connect

ACTIONS = ("kill", "term", "reload", "rolling", "freeze", "scale")
DEFAULT_MIX = "kill,term,reload,freeze"
# Anything else sent to a master could make it exit, and honcho would then stop the formation.
MASTER_SIGNALS = frozenset({signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU})
DRY_RUN = "skipped: dry run"
EVENT_FIELDS = ("time", "action", "target", "pid", "outcome")
NO_REPLACEMENT_S = 5.0  # serving without a new worker this long after the signal: none is coming
POLL_S = 0.05


def parse_mix(text):
    """``"kill=3,term=1"`` or ``"kill,term"`` (equal weights) -> ``{"kill": 3.0, "term": 1.0}``."""
    mix = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, has_weight, weight = item.partition("=")
        try:
            mix[name.strip()] = float(weight) if has_weight else 1.0
        except ValueError:
            raise ValueError(f"the weight in {item!r} is not a number") from None
    return checked_mix(mix)


def checked_mix(mix):
    unknown = set(mix) - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown chaos action(s) {', '.join(sorted(unknown))}; choose from {', '.join(ACTIONS)}")
    if any(weight < 0 for weight in mix.values()) or not any(mix.values()):
        raise ValueError("mix weights must be >= 0, and at least one > 0")
    return dict(mix)


def local_master(instance):
    """The instance's master as a psutil.Process when it is on this host, gunicorn, and listening
    on the registered port; None otherwise."""
    try:
        port = int(instance.address.rpartition(":")[2])
        if not isinstance(instance.master, int) or instance.master <= 0:
            return None
        master = psutil.Process(instance.master)
        is_gunicorn = any("gunicorn" in part for part in master.cmdline())
        listens = any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in master.net_connections("tcp"))
    except (psutil.Error, ValueError):
        return None
    return master if is_gunicorn and listens else None


def healthz_pid(address, timeout=1.0):
    """The pid of the worker that answered ``GET /healthz`` at address, or None."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a probe of this instance, never via http_proxy
    try:
        with direct.open(f"http://{address}/healthz", timeout=timeout) as response:
            return json.load(response)["served_by"]["pid"]
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
        return None


def format_event(event):
    clock = time.strftime("%H:%M:%S", time.localtime(event["time"])) + f".{int(event['time'] % 1 * 1000):03d}"
    pid = f"pid {event['pid']}" if event["pid"] else "-"
    extras = " ".join(f"{k}={v}" for k, v in event.items() if k not in EVENT_FIELDS)
    return f"{clock} {event['action']:<8} {event['target'] or '-'} {pid} {event['outcome']} {extras}".rstrip()


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
        return self

    def stop(self):
        """Ends the schedule, thaws every frozen worker at once, then lets pending recovery
        measurements finish (each is bounded by recovery_timeout)."""
        self._stopping.set()
        if self._scheduler:
            self._scheduler.join()
        self._thaw_all()
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


# -- command line ---------------------------------------------------------------------------

def mix_argument(text):
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv, env):
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description="Kill, freeze, reload and rescale the formation's web processes.",
        epilog="CHAOS_RATE, CHAOS_MIX and CHAOS_SEED give the defaults; with a rate of 0 the monkey "
               "only idles until SIGTERM (the Procfile's chaos type relies on that).")
    parser.add_argument("--rate", type=float, default=env.get("CHAOS_RATE") or "0",
                        help="actions per second, at fixed intervals (default: CHAOS_RATE, else 0 = off)")
    parser.add_argument("--mix", type=mix_argument, default=env.get("CHAOS_MIX") or DEFAULT_MIX,
                        help=f"action weights, 'kill=3,term=1' or 'kill,term' (default: CHAOS_MIX, else {DEFAULT_MIX})")
    parser.add_argument("--seed", type=int, default=env.get("CHAOS_SEED") or None,
                        help="random seed, for a reproducible run (default: CHAOS_SEED, else random)")
    parser.add_argument("--duration", type=float, help="seconds to run (default: until SIGTERM or Ctrl-C)")
    parser.add_argument("--log", metavar="PATH", help="append every event to PATH as a JSON line")
    parser.add_argument("--freeze-s", type=float, default=3.0, help="how long a freeze lasts (default: 3)")
    parser.add_argument("--max-workers", type=int, default=4, help="scale never goes above this per instance")
    parser.add_argument("--dry-run", action="store_true", help="choose actions and targets, send no signal")
    parser.add_argument("--redis-url", default=redis_url(env), help="the formation's Redis (default from env)")
    commands = parser.add_subparsers(dest="command", metavar="once", help="one action instead of a schedule")
    once = commands.add_parser("once", help="perform one action, wait for its follow-up, and exit")
    once.add_argument("action", choices=ACTIONS)
    once.add_argument("--target", metavar="NAME", help="the instance, e.g. web.2 (default: a random one)")
    return parser.parse_args(argv)


def say(text):
    print(text, flush=True)  # flushed at once: under honcho stdout is a pipe


def main(argv=None, env=os.environ):
    args = parse_args(argv, env)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    monkey = ChaosMonkey(connect(args.redis_url), rate=args.rate, mix=args.mix, seed=args.seed, log_path=args.log,
                         freeze_s=args.freeze_s, max_workers=args.max_workers, dry_run=args.dry_run,
                         on_event=lambda event: say(format_event(event)))
    mix = ",".join(f"{name}={weight:g}" for name, weight in monkey.mix.items())
    if args.command == "once":
        event = monkey.act(args.action, args.target)
        while monkey.busy() and not done.wait(POLL_S):
            pass
        monkey.stop()
        return 0 if event["outcome"] in ("ok", DRY_RUN) else 1
    if args.rate > 0:
        say(f"chaos: {args.rate:g} action/s at fixed intervals, mix {mix}, seed {monkey.seed}")
        monkey.start()
    else:
        say("chaos: off; set CHAOS_RATE (actions per second, e.g. CHAOS_RATE=1) to unleash the monkey")
    done.wait(args.duration)
    monkey.stop()
    if args.rate > 0:
        say("chaos: summary " + json.dumps(monkey.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
