"""Faults on the replicated backing service: kill or freeze the current primary, and time the failover.

    faults = PrimaryFaults(sentinels(os.environ), record, in_background, stopping)   # the engine's hooks
    faults.act("primary-kill")      # SIGKILL the primary's server; its supervisor brings it back as a replica
    faults.act("primary-freeze")    # SIGSTOP it for freeze_s (> down-after), then SIGCONT: the zombie primary
    faults.stop()                   # thaws a frozen primary at once

The target is whichever server the Sentinels name the primary now (``SENTINEL
get-master-addr-by-name``), so there is no random choice to make: the engine's seeded
action stream alone decides the schedule. Its pid comes from ``INFO server``.

Events, through the engine's ``record`` (so they land in chaos.jsonl like any other):

    {"action": "primary-kill", "target": "redis@127.0.0.1:6390", "pid": 4201, "outcome": "ok", "signal": "SIGKILL"}
    {"action": "primary-freeze", ..., "duration_s": 5.0}
    {"action": "primary-thaw", "after": "primary-freeze", ..., "frozen_s": 5.001}
    {"action": "failover", "after": "primary-kill", "outcome": "ok", "began": 1700000000.1,
     "elected": 1700000002.4, "failover_s": 2.3, "from": "127.0.0.1:6390", "to": "127.0.0.1:20401",
     "rejoined_s": 4.1, "old_primary": "slave", "second_primary": false}

Failovers nobody asked for are recorded too: while the schedule runs, ``observe``
polls the Sentinels (what most of them name, as they disagree for a moment during a
switch) and records a ``failover`` with ``"after": "none"`` for every
change of primary that no fault's watch is timing (a Sentinel that saw a busy
primary miss down-after, on a loaded machine), so the checker can name the hits
such a failover lost as well.

``failover_s`` runs from the signal to the Sentinels naming another primary;
``rejoined_s`` until the old one answers ``ROLE`` as a replica. ``second_primary``
is true when the old primary was seen answering as a primary after the election
(a split brain, however short). An ``outcome`` of ``error: no failover within ...``
means the Sentinels never elected another: the fault ended before down-after, or
no replica could be promoted. When hits were served again is read from the
journal by the checker (bench/verdict/failover.py).
"""
import os
import signal
import time
from dataclasses import dataclass

import redis

from common.redis_client import primary_address, sentinel_of

ACTIONS = {"primary-kill": "kill", "primary-freeze": "freeze"}
POLL_S = 0.1


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    @property
    def name(self):
        return f"redis@{self.host}:{self.port}"

    def client(self):
        return redis.Redis(host=self.host, port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5,
                           decode_responses=True)


class PrimaryFaults:
    def __init__(self, settings, record, in_background, stopping, freeze_s=5.0, failover_timeout=30.0):
        self.settings, self.record, self.in_background, self.stopping = settings, record, in_background, stopping
        self.freeze_s, self.failover_timeout = freeze_s, failover_timeout
        self.frozen = {}  # pid -> (Server, monotonic time of the SIGSTOP)
        self.watching = 0  # fault watches under way: the changes of primary they time are theirs

    def act(self, action):
        if self.settings is None:
            return self.record(action, None, None, "skipped: no REDIS_SENTINELS: not a replicated formation")
        address = primary_address(self.settings)
        if address is None:
            return self.record(action, None, None, "skipped: the Sentinels name no primary that is up")
        server = Server(*address)
        try:
            pid = int(server.client().info("server")["process_id"])
        except redis.RedisError as exc:
            return self.record(action, server, None, f"skipped: the primary does not answer ({type(exc).__name__})")
        return getattr(self, ACTIONS[action])(action, server, pid)

    def kill(self, action, server, pid):
        event = self.signal(action, server, pid, signal.SIGKILL)
        if event["outcome"] == "ok":
            self.in_background(self.watch, event, server)
        return event

    def freeze(self, action, server, pid):
        self.frozen[pid] = (server, time.monotonic())  # noted first: stop() never misses a frozen primary
        event = self.signal(action, server, pid, signal.SIGSTOP, duration_s=self.freeze_s)
        if event["outcome"] != "ok":
            self.frozen.pop(pid, None)
            return event
        self.in_background(self.thaw_later, pid)
        self.in_background(self.watch, event, server)
        return event

    def signal(self, action, server, pid, sig, **extra):
        try:
            os.kill(pid, sig)
        except OSError as exc:
            return self.record(action, server, pid, f"skipped: {exc.strerror}", **extra)
        return self.record(action, server, pid, "ok", signal=sig.name, **extra)

    def thaw_later(self, pid):
        self.stopping.wait(self.freeze_s)
        self.thaw(pid)

    def thaw(self, pid):
        frozen = self.frozen.pop(pid, None)
        if frozen:
            server, stopped_at = frozen
            self.signal("primary-thaw", server, pid, signal.SIGCONT, after="primary-freeze",
                        frozen_s=round(time.monotonic() - stopped_at, 3))

    def stop(self):
        for pid in list(self.frozen):
            self.thaw(pid)

    def observe(self):
        """Until the schedule stops: a ``failover`` event for each change of primary no fault caused."""
        if self.settings is None:
            return
        known, seen_at = self.agreed(), time.time()
        while not self.stopping.wait(POLL_S * 2):
            named = self.agreed()
            if named is not None and known is not None and named != known and not self.watching:
                old, new = Server(*known), Server(*named)
                self.record("failover", old, None, "ok", after="none", began=seen_at, elected=time.time(),
                            **{"from": f"{old.host}:{old.port}"}, to=f"{new.host}:{new.port}")
            if named is not None:
                known, seen_at = named, time.time()

    def agreed(self):
        """The primary most of the Sentinels name; None without a majority (during a switch they differ)."""
        votes = {}
        for sentinel in sentinel_of(self.settings).sentinels:
            try:
                named = sentinel.sentinel_get_master_addr_by_name(self.settings.master)
            except redis.RedisError:
                continue
            if named:
                host, port = named
                named = (host.decode() if isinstance(host, bytes) else host, int(port))
                votes[named] = votes.get(named, 0) + 1
        best = max(votes, key=votes.get, default=None)
        return best if best and votes[best] > len(self.settings.addresses) / 2 else None

    def watch(self, cause, old):
        """Waits for the Sentinels to name another primary, then for the old one to rejoin as a replica."""
        self.watching += 1
        try:
            return self.timed(cause, old)
        finally:
            self.watching -= 1

    def timed(self, cause, old):
        began, started = cause["time"], time.monotonic()
        elected, second_primary, role = None, False, None
        while time.monotonic() - started < self.failover_timeout:
            if elected is None:
                named = primary_address(self.settings)
                if named is not None and Server(*named) != old:
                    elected, new = time.time(), Server(*named)
            else:
                role = self.role_of(old)
                second_primary = second_primary or role == "master"
                if role == "slave":
                    break
            time.sleep(POLL_S)
        if elected is None:
            return self.record("failover", old, cause["pid"], f"error: no failover within {self.failover_timeout:g}s",
                               after=cause["action"], began=began)
        return self.record("failover", old, cause["pid"], "ok", after=cause["action"], began=began, elected=elected,
                           failover_s=round(elected - began, 3), **{"from": f"{old.host}:{old.port}"},
                           to=f"{new.host}:{new.port}", old_primary=role or "down",
                           rejoined_s=round(time.time() - began, 3) if role == "slave" else None,
                           second_primary=second_primary)

    @staticmethod
    def role_of(server):
        try:
            return server.client().execute_command("ROLE")[0]
        except redis.RedisError:
            return None
