"""The probe's run: visitors write on one instance and read back on another while instances come and go.

    formation = Formation(machines, registry=None)          # bench/probe/formation.py
    probing = Probing(spec, formation, front_url=None, seed=1, duration=10)
    visitors = probing.run(abort=signals.check)            # each visitor's writes, every read of each

Each visitor (its own ``requests.Session``, so its own cookie jar) has a home
instance: it makes its ``setup`` there once, then its writes; each
acknowledged write is read back on another instance, addressed directly, for
up to ``settle`` seconds, and when that fails, on the instance that wrote
it; now and then an older write is read again on an instance started after
it. A visitor whose home is gone retires and a new one takes its place.
Meanwhile the main thread plays the chaos plan in factor6's vocabulary
(bench/chaos/vocabulary.py): ``kill`` (SIGKILL of the whole tree, then a
replacement on a fresh disk), ``scale_web`` up (the new instance must see
old writes) and down (SIGTERM), and once a ``rolling`` restart of every
instance. At the end every acknowledged write is read once more on an
instance started after it (the ``final`` phase). With ``front_url`` (the
proxy) every request goes through it and ``X-Backend`` names who answered.
A request that gets no answer is tried elsewhere; only answers are judged.
"""
from __future__ import annotations

import random
import threading
import time

import requests

from bench.chaos.vocabulary import SCALE_WEB
from bench.probe import steps
from bench.probe.exchange import send
from bench.probe.formation import address
from bench.probe.history import Read, Write, answered

# (action, share of the run's duration at which it starts): each action once, in this order.
CHAOS_PLAN = (("kill", 0.15), ("scale up", 0.3), ("rolling", 0.45), ("scale down", 0.7), ("kill", 0.85))
VISITORS_PER_PROBE = 2
PAUSE = 0.05  # seconds between a visitor's cycles
UNANSWERED_S = 10.0  # seconds a read may go without any answer (instances restarting) before it gives up
SETUP_TRIES = 3  # tries of a setup step that got no answer


class Visitor(threading.Thread):
    """One simulated visitor of one probe: its own cookie jar, a home instance, its writes and their reads."""

    def __init__(self, probing, probe, name, seed):
        super().__init__(name=name, daemon=True)
        self.probing, self.probe = probing, probe
        self.session, self.rng = requests.Session(), random.Random(seed)
        self.bindings = {steps.VISITOR: name}
        self.writes: list[Write] = []
        self.home = None
        self.setup_failure = None  # the exchange and reason a setup step failed with
        self.retired = False
        self.crash = None  # an error of the probe itself

    def run(self):
        try:
            self.home = self.probing.home()
            if self.home and self.setup():
                while not self.probing.stopping.is_set() and self.probing.is_home(self.home):
                    self.cycle()
                    self.probing.stopping.wait(PAUSE)
        except Exception as exc:  # noqa: BLE001 - a bug of the probe: reported as no verdict, never swallowed
            self.crash = f"{type(exc).__name__}: {exc}"
        self.retired = True

    def elsewhere(self, avoid):
        """The target of one read: the same other instance on every try (so a lagging one gets ``settle``
        seconds to catch up, and a wrong one is not hidden by another that is right), a new one once it is gone."""
        chosen = None

        def target():
            nonlocal chosen
            if chosen is None or not chosen.running:
                chosen = self.probing.other(self.rng, avoid)
            return (chosen.name, chosen.url) if chosen else None

        return target

    def setup(self):
        for step in self.probe.setup:
            for _ in range(SETUP_TRIES):
                exchange, response = send(self.session, *self.probing.at(self.home), steps.request_for(
                    step, self.bindings, self.rng))
                if response is not None:
                    break
            if response is None or not self.probing.is_home(self.home):
                return False  # home gone: not the app's fault; the visitor simply retires
            verdict, reason = answered(exchange, response, step, self.bindings)
            if verdict != "ok":
                self.setup_failure = (exchange, reason)
                return False
            self.bindings.update(steps.captured(step, response.status_code, response.headers, response.content))
        return True

    def cycle(self):
        probe = self.probe
        bindings = {**self.bindings, steps.TOKEN: steps.fresh_token(self.rng)}
        exchange, response = send(self.session, *self.probing.at(self.home),
                                  steps.request_for(probe.write, bindings, self.rng))
        if response is None:
            return  # no answer (the home instance died under it): neither acknowledged nor judged
        exchange.instance = self.probing.who(exchange)
        verdict, reason = answered(exchange, response, probe.write, bindings)
        write = Write(probe.name, self.name, exchange, verdict == "ok", reason, exchange.instance, bindings)
        self.writes.append(write)
        if not write.acked:
            return
        bindings.update(steps.captured(probe.write, response.status_code, response.headers, response.content))
        if probe.unique:
            write.unique = steps.capture(probe.unique, response.status_code, response.headers, response.content)
        read = self.read(write, "elsewhere", self.elsewhere(avoid=write.writer))
        if self.probing.direct:
            if read.verdict != "ok":
                home = self.home
                self.read(write, "writer", lambda: (home.name, home.url) if home.running else None, fixed=True)
            self.revisit()

    def revisit(self):
        """Read one older write on an instance started after it (a scaled-up or restarted one). Not through the
        proxy: there every read is the proxy's to place, which is what --proxy-sticky shows."""
        newest = self.probing.newest()
        if newest is None:
            return
        for write in self.writes:
            if write.acked and not write.checked_later and write.exchange.time < newest.started:
                write.checked_later = True
                self.read(write, "newer", lambda: (newest.name, newest.url) if newest.running else None, fixed=True)
                return

    def read(self, write, phase, target, fixed=False):
        """Read ``write`` back where ``target()`` says until it reads right, for up to ``settle`` seconds once
        answered; a target of None or a request without an answer is tried again for up to UNANSWERED_S,
        unless the target is ``fixed`` (one instance): then None means it is gone, and the read ends. The read
        is kept with the write when it got an answer, or none at all (a read with no target is not kept)."""
        settle = self.probing.settle
        started = time.monotonic()
        last = unanswered = None
        while True:
            where = target()
            if where is None and fixed:
                break
            if where is not None:
                exchange, response = send(self.session, *where, steps.request_for(
                    self.probe.read, write.bindings, self.rng))
                if response is None:
                    unanswered = Read(phase, exchange, "unanswered", exchange.error)
                else:
                    exchange.instance = self.probing.who(exchange)
                    verdict, reason = answered(exchange, response, self.probe.read, write.bindings)
                    last = Read(phase, exchange, verdict, reason)
                    if verdict == "ok":
                        break
            waited = time.monotonic() - started
            if (last and waited >= settle) or waited >= UNANSWERED_S or self.probing.abandoned.is_set():
                break
            time.sleep(0.1)
        if last or unanswered:
            write.reads.append(last or unanswered)
        return last or unanswered or Read(phase, write.exchange, "unanswered", "no instance to read on")


class Probing:
    """The run: visitors under the chaos plan, then the final reads; ``run()`` returns every visitor."""

    def __init__(self, spec, formation, front_url=None, seed=1, duration=10.0):
        self.spec, self.formation, self.front_url = spec, formation, front_url
        self.direct = front_url is None
        self.settle, self.duration = spec.app.settle, duration
        self.rng = random.Random(seed)
        self.stopping, self.abandoned = threading.Event(), threading.Event()
        self.visitors: list[Visitor] = []

    # -- where requests go
    def home(self):
        """A running instance picked at random; through the proxy, the proxy."""
        if not self.direct:
            return FrontDoor(self.front_url)
        running = self.formation.machines.running()
        return self.rng.choice(running) if running else None

    @staticmethod
    def is_home(home):
        return home.running

    @staticmethod
    def at(home):
        return home.name, home.url

    def other(self, rng, avoid):
        """A running instance but ``avoid``, picked at random (None when there is none); through the proxy, the proxy."""
        if not self.direct:
            return FrontDoor(self.front_url)
        choices = [i for i in self.formation.machines.running() if i.name != avoid]
        return rng.choice(choices) if choices else None

    def who(self, exchange):
        """The instance that answered: the one addressed, or the one the proxy's ``X-Backend`` names."""
        if self.direct:
            return exchange.instance
        backend = exchange.headers.get("X-Backend", "")
        names = {address(i): i.name for i in self.formation.machines.instances}
        return f"proxy -> {names.get(backend, backend or '?')}"

    def newest(self):
        running = self.formation.machines.running()
        return max(running, key=lambda i: i.started) if running else None

    # -- the run
    def spawn(self, probe):
        visitor = Visitor(self, probe, steps.fresh_visitor(self.rng), self.rng.randrange(2 ** 32))
        self.visitors.append(visitor)
        visitor.start()

    def keep_visitors(self):
        """A new visitor for each retired one (its home instance gone), while the run goes on."""
        for probe in self.spec.probes:
            active = [v for v in self.visitors if v.probe is probe and not v.retired]
            for _ in range(VISITORS_PER_PROBE - len(active)):
                self.spawn(probe)

    def run(self, abort):
        started = time.monotonic()
        plan = [(action, started + share * self.duration) for action, share in CHAOS_PLAN]
        try:
            self.keep_visitors()
            while plan or time.monotonic() - started < self.duration:
                abort()
                if plan and time.monotonic() >= plan[0][1]:
                    self.chaos(plan.pop(0)[0], abort)
                if self.setup_never_works():
                    break
                self.keep_visitors()
                time.sleep(0.1)
        finally:
            self.stopping.set()
            self.join(abort)
        self.final(abort)
        return self.visitors

    def setup_never_works(self):
        """Every probe's visitors so far failed their setup: more of them will not do better."""
        return all(any(v.probe is probe and v.setup_failure for v in self.visitors)
                   and not any(v.probe is probe and v.writes for v in self.visitors) for probe in self.spec.probes)

    def join(self, abort):
        for visitor in self.visitors:
            while visitor.is_alive():
                try:
                    abort()
                except BaseException:
                    self.abandoned.set()  # reads stop retrying: the run ends now
                    raise
                visitor.join(0.2)

    def chaos(self, action, abort):
        formation = self.formation
        running = formation.machines.running()
        if action == "kill" and running:
            target = self.rng.choice(running)
            formation.event("kill", target.name, target.popen.pid)
            formation.end(target, kill=True)
            began = time.time()
            replacement = formation.start()
            formation.event("recovery", target.name, after="kill", replacement=replacement.name,
                            recovery_s=round(time.time() - began, 3))
        elif action == "scale up":
            formation.event(SCALE_WEB, formation.machines.process, desired=len(running) + 1)
            formation.start()
        elif action == "scale down" and len(running) > 2:
            target = self.rng.choice(running)
            formation.event(SCALE_WEB, target.name, target.popen.pid, desired=len(running) - 1)
            formation.end(target, kill=False)
        elif action == "rolling":
            formation.rolling()

    def final(self, abort):
        """Every acknowledged write read once more, on an instance started after every one of them."""
        fresh = self.formation.start()
        self.formation.event(SCALE_WEB, fresh.name, fresh.popen.pid, desired=len(self.formation.machines.running()),
                             final=True)
        pending = [(v, w) for v in self.visitors for w in v.writes if w.acked]
        deadline = time.monotonic() + self.settle
        last = {}
        while pending:
            abort()
            failing = []
            for visitor, write in pending:
                exchange, response = send(visitor.session, fresh.name, fresh.url,
                                          steps.request_for(visitor.probe.read, write.bindings, visitor.rng))
                if response is None:
                    failing.append((visitor, write))
                    last.setdefault(id(write), Read("final", exchange, "unanswered", exchange.error))
                    continue
                verdict, reason = answered(exchange, response, visitor.probe.read, write.bindings)
                last[id(write)] = Read("final", exchange, verdict, reason)
                if verdict != "ok":
                    failing.append((visitor, write))
            pending = failing
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        for visitor in self.visitors:
            for write in visitor.writes:
                if id(write) in last:
                    write.reads.append(last[id(write)])


class FrontDoor:
    """The proxy as a visitor's home: always there, and requests through it are answered by whoever it picks."""

    name = "proxy"
    running = True

    def __init__(self, url):
        self.url = url
