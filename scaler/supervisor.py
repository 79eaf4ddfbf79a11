"""The scaler's loop: keep the web count that was asked for, starting and stopping only its own instances.

    supervisor = Supervisor(ScalerConfig.from_env(), connect(url), command_of("Procfile", "web"), dict(os.environ))
    while not stopping.wait(TICK_S):
        supervisor.tick(time.monotonic())
    supervisor.stop()

Each tick:

1. Reap. An instance that exited while draining is gone. One that exited
   otherwise crashed: its registry entry is removed and it is launched again,
   after a back-off that grows while it keeps crashing soon after launch.
2. Enforce deadlines: SIGKILL an instance still draining after
   ``SCALER_DRAIN_TIMEOUT``, or not registered ``BOOT_TIMEOUT`` after launch.
3. Read the registry. Entries from this host on a port the scaler gave are its
   own (and mark them serving); every other entry is *foreign*: honcho's
   instances, or other hosts'.
4. Once the foreign count has held still for ``SCALER_SETTLE`` seconds (so that
   honcho's instances registering at start, or an entry lapsing for a moment,
   start nothing), bring its own count to ``desired - foreign``. The total is
   kept within [foreign, ``SCALER_MAX``]: instances it did not start are never
   its to stop, so a lower count is clamped, and said so. New instances take
   the smallest free ``web.N`` names; the highest-numbered are drained first.
5. Renew its lease, ``factor6:scaler``, with its status as the value. While
   another live scaler holds the lease this one stands by, and drains any
   instances it has, which the leader counts as foreign.
"""
import logging
import os
import socket
import time

from redis.exceptions import RedisError

from scaler.instances import DRAINING, SERVING, STARTING, WAITING, OwnedInstance
from scaler.shared import DESIRED_KEY, Desired, Lease
from common.registry import Registry
from common.schema import SCALER_KEY

PROCESS_TYPE = "web"
TICK_S = 0.25
LEASE_TTL = 3.0
BOOT_TIMEOUT = 60.0  # seconds from launch to registered; longer means stuck, and it is relaunched
FAST_CRASH_S = 10.0  # a crash this soon after launch counts towards the restart back-off

log = logging.getLogger("scaler")


def restart_delay(fast_crashes):
    """No wait after an instance that ran a while; 0.5, 1, 2 ... up to 30 s while it keeps crashing at once."""
    return min(30.0, 0.25 * 2 ** fast_crashes) if fast_crashes else 0.0


def number_of(name):
    """12 for ``web.12``; 0 for anything else."""
    kind, _, number = name.rpartition(".")
    return int(number) if kind == PROCESS_TYPE and number.isdigit() else 0


def port_of(address):
    return address.rpartition(":")[2]


class Supervisor:
    def __init__(self, config, client, command, env, preexec_fn=None):
        self.config, self.client, self.command, self.env = config, client, command, env
        self.preexec_fn = preexec_fn
        self.registry, self.desired = Registry(client), Desired(client)
        self.lease = Lease(client, SCALER_KEY, LEASE_TTL)
        self.host = socket.gethostname()
        self.instances = {}  # name -> OwnedInstance
        self.foreign, self.foreign_since = None, 0.0
        self.requested, self.target, self.note = None, 0, ""
        self.leading, self.led = None, False  # leading now (None: not known yet); ever led
        self.failing = False  # Redis unreachable: logged once per streak
        self.remembered = None  # the last count asked for, seen while leading
        self.started = time.time()
        self.ticks = 0  # in its status: how a test sees that time, and work, passed

    # -- the loop --------------------------------------------------------------------------

    def tick(self, now):
        self.ticks += 1
        self.reap(now)
        self.enforce_deadlines(now)
        try:
            entries = self.registry.instances()
            self.requested = self.hold_count(self.desired.get())
            if self.leading:
                self.observe(entries, now)
                if self.settled(now):
                    self.reconcile(entries, now)
            else:
                self.drain([i for i in self.instances.values() if i.state != DRAINING], now)
            self.launch_due(now)
            # A count left in Redis by an earlier formation is not this one's: it starts from the Procfile's.
            self.lead(self.lease.hold(self.status(now), reset=() if self.led else [DESIRED_KEY]))
        except (RedisError, OSError) as exc:
            # Instances keep serving meanwhile; crashed ones are still relaunched on the next good tick.
            if not self.failing:
                log.warning("redis unreachable, holding the formation as it is: %s", exc)
            self.failing = True
            return
        if self.failing:
            log.info("redis reachable again")
        self.failing = False

    def hold_count(self, requested):
        """The count asked for, kept through a Redis that came back empty.

        Once this scaler has led, a count it saw stays asked for: should the key vanish (a
        restart with ``REDIS_PERSISTENCE=none`` forgets everything), it is written back rather
        than read as "nobody asked", which would drain every instance of its own. Counts read
        before it first led are not kept: taking the lease clears those on purpose."""
        if requested is not None:
            if self.led:
                self.remembered = requested
            return requested
        if self.led and self.remembered is not None:
            self.desired.restore(self.remembered)
            log.warning("%s lost from Redis (restarted empty?): keeping %s=%d and writing it back",
                        DESIRED_KEY, PROCESS_TYPE, self.remembered)
            return self.remembered
        return None

    def lead(self, leading):
        self.led = self.led or leading
        if leading != self.leading:
            if leading:
                log.info("leading: keeping %s at the count in factor6:desired:%s", PROCESS_TYPE, PROCESS_TYPE)
            else:
                log.warning("standing by: another scaler holds the lease (%s)", self.client.get(SCALER_KEY))
        self.leading = leading

    def settled(self, now):
        return self.foreign is not None and now - self.foreign_since >= self.config.settle_s

    # -- steps -----------------------------------------------------------------------------

    def reap(self, now):
        for instance in list(self.instances.values()):
            code = instance.exit_code()
            if code is None or instance.state == WAITING:
                continue
            if instance.state == DRAINING:
                log.info("%s drained and exited (rc=%s) in %.1fs", instance.name, code, now - instance.since)
                del self.instances[instance.name]
                continue
            self.forget_entry(instance)
            instance.fast_crashes = instance.fast_crashes + 1 if now - instance.launched < FAST_CRASH_S else 0
            instance.restarts += 1
            instance.due = now + restart_delay(instance.fast_crashes)
            log.warning("%s (pid %d) exited with rc=%s while %s: relaunching in %.1fs", instance.name,
                        instance.popen.pid, code, instance.state, instance.due - now)
            instance.enter(WAITING, now)

    def forget_entry(self, instance):
        """A dead instance's entry would linger for the registry TTL: remove it so the proxy stops dialling it."""
        if instance.address:
            try:
                self.registry.deregister(instance.address)
            except (RedisError, OSError):
                pass  # it expires by itself

    def enforce_deadlines(self, now):
        for instance in self.instances.values():
            overdue = {DRAINING: self.config.drain_timeout, STARTING: BOOT_TIMEOUT}.get(instance.state)
            if overdue is not None and now - instance.since > overdue and instance.alive():
                log.warning("%s still %s after %.0fs: SIGKILL", instance.name, instance.state, overdue)
                instance.kill()

    def observe(self, entries, now):
        by_port = {str(i.port): i for i in self.instances.values() if i.state != WAITING}
        foreign = 0
        for entry in entries:
            instance = by_port.get(port_of(entry["address"])) if entry.get("host") == self.host else None
            if instance is None:
                foreign += 1
            elif instance.state == STARTING:
                instance.address = entry["address"]
                log.info("%s serving at %s (pid %d), %.1fs after launch", instance.name, instance.address,
                         instance.popen.pid, now - instance.launched)
                instance.enter(SERVING, now)
        if foreign != self.foreign:
            self.foreign, self.foreign_since = foreign, now

    def reconcile(self, entries, now):
        asked = self.requested if self.requested is not None else self.foreign
        total = min(max(asked, self.foreign), max(self.foreign, self.config.max_instances))
        self.explain(asked, total)
        self.target = total - self.foreign
        active = [i for i in self.instances.values() if i.state != DRAINING]
        if len(active) < self.target:
            in_use = {e.get("name") for e in entries} | set(self.instances)
            for name in self.free_names(in_use, self.target - len(active)):
                self.instances[name] = OwnedInstance(name, due=now)
            log.info("scaling %s to %d: %d of mine on top of %d others", PROCESS_TYPE, total, self.target, self.foreign)
        elif len(active) > self.target:
            # Not yet serving first, then the highest numbers: the formation shrinks back the way it grew.
            active.sort(key=lambda i: (i.state == SERVING, -number_of(i.name)))
            log.info("scaling %s to %d: %d of mine on top of %d others", PROCESS_TYPE, total, self.target, self.foreign)
            self.drain(active[:len(active) - self.target], now)

    def explain(self, asked, total):
        note = ""
        if total > asked:
            note = (f"{PROCESS_TYPE}={asked} asked, but {self.foreign} instances were not started by this scaler"
                    f" (honcho's, or another host's) and are not its to stop: keeping {total}")
        elif total < asked:
            note = f"{PROCESS_TYPE}={asked} asked, but SCALER_MAX is {self.config.max_instances}: keeping {total}"
        if note and note != self.note:
            log.warning("%s", note)
        self.note = note

    @staticmethod
    def free_names(in_use, count):
        names, number = [], 0
        while len(names) < count:
            number += 1
            if f"{PROCESS_TYPE}.{number}" not in in_use:
                names.append(f"{PROCESS_TYPE}.{number}")
        return names

    def drain(self, instances, now):
        for instance in instances:
            if instance.state == WAITING:
                del self.instances[instance.name]  # never launched, or dead already: nothing to drain
                continue
            log.info("%s (pid %d): draining", instance.name, instance.popen.pid)
            instance.terminate()  # the master deregisters before it drains (web/gunicorn_conf.py)
            instance.enter(DRAINING, now)

    def launch_due(self, now):
        for instance in self.instances.values():
            if instance.state == WAITING and instance.due <= now:
                instance.launch(self.command, self.env, now, self.preexec_fn)
                log.info("%s launched: pid %d, port %d", instance.name, instance.popen.pid, instance.port)

    # -- status and stop -------------------------------------------------------------------

    def status(self, now):
        active = [i for i in self.instances.values() if i.state != DRAINING]
        return {
            "pid": os.getpid(), "host": self.host, "started": self.started, "requested": self.requested,
            "foreign": self.foreign, "target": self.target, "max": self.config.max_instances, "note": self.note,
            "settled": self.settled(now), "ticks": self.ticks,
            "steady": self.settled(now) and len(active) == len(self.instances) == self.target
            and all(i.state == SERVING for i in active),
            "instances": [i.describe() for i in sorted(self.instances.values(), key=lambda i: number_of(i.name))],
        }

    def stop(self):
        """Drain every instance at once, SIGKILL what is left after SCALER_STOP_TIMEOUT, give up the lease."""
        now = time.monotonic()
        self.drain([i for i in self.instances.values() if i.state != DRAINING], now)
        deadline = now + self.config.stop_timeout
        while any(i.alive() for i in self.instances.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for instance in self.instances.values():
            if instance.alive():
                log.warning("%s still draining at stop: SIGKILL", instance.name)
                instance.kill()
        self.instances.clear()
        try:
            self.lease.release()  # scripts/scale then knows at once; else the lease expires in LEASE_TTL
        except (RedisError, OSError):
            pass
