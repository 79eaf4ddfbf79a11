"""How one hit is counted: the right way, and two ways that are wrong on purpose.

    >>> counter = make_counter("atomic", client, instance="web.1", ttl=86400)
    >>> counter.hit("run1:u1:1")
    Hit(number=1, replayed=False)
    >>> counter.hit("run1:u1:1")
    Hit(number=1, replayed=True)

Modes (``HIT_MODE``):

- ``atomic``: one Lua script increments, remembers key -> number and appends the
  ledger in a single Redis round trip, so a crash can never split them.
- ``seed``: the seed's ``INCR`` then a separate ``GET``; two concurrent hits can
  read the same number. A negative control for the checker.
- ``local``: the count lives in process memory, breaking the sixth factor; with
  two processes, or after a restart, numbers repeat. A negative control too.

Keys shaped ``<run>:<rest>`` are also appended to the run's ledger,
``factor6:ledger:<run>``, which the consistency checker reads.
"""
import itertools
import json
import time
from dataclasses import dataclass

from web.durability import Unconfirmed, confirm_command, confirmed
from common.schema import COUNTER, SERVED, key_record, ledger_of


@dataclass(frozen=True)
class Hit:
    number: int
    replayed: bool = False


# KEYS: counter, key record ('' without a key), ledger ('' without a run), served hash
# ARGV: retention seconds, instance, now, key
APPLY_ONCE = """
if KEYS[2] ~= '' then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    redis.call('EXPIRE', KEYS[2], ARGV[1])  -- a write, so WAIT/WAITAOF after a replay cover its first application
    return {tonumber(seen), 1}
  end
end
local n = redis.call('INCR', KEYS[1])
if KEYS[2] ~= '' then
  redis.call('SET', KEYS[2], n, 'EX', ARGV[1])
end
if KEYS[3] ~= '' then
  redis.call('RPUSH', KEYS[3], cjson.encode({key=ARGV[4], number=n, instance=ARGV[2], time=tonumber(ARGV[3])}))
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
return {n, 0}
"""


class AtomicCounter:
    def __init__(self, client, instance, ttl, durability=None):
        self.client, self.instance, self.ttl, self.durability = client, instance, ttl, durability
        # register_script runs EVALSHA and falls back to EVAL after a Redis restart.
        self._apply = client.register_script(APPLY_ONCE)

    def hit(self, key=None):
        keys = [COUNTER, key_record(key) if key else "", ledger_of(key) if key else "", SERVED]
        args = [self.ttl, self.instance, time.time(), key or ""]
        confirm = confirm_command(self.durability) if self.durability else []
        if not confirm:
            number, replayed = self._apply(keys=keys, args=args)
            return Hit(int(number), bool(replayed))
        pipe = self.client.pipeline(transaction=False)  # one connection: WAIT waits for its writes
        self._apply(keys=keys, args=args, client=pipe)
        pipe.execute_command(*confirm)
        (number, replayed), reply = pipe.execute()
        if not confirmed(self.durability, reply):
            raise Unconfirmed(f"hit {number} not confirmed by {self.durability.mode} {self.durability.replicas} "
                              f"within {self.durability.timeout_ms} ms (reply {reply})")
        return Hit(int(number), bool(replayed))

    def count(self):
        return int(self.client.get(COUNTER) or 0)


class _NonAtomicCounter(AtomicCounter):  # wrong on purpose, and never waits for replicas
    """Looks up the key, takes a number, then records it: three steps with races between them."""

    def hit(self, key=None):
        if key:
            seen = self.client.get(key_record(key))
            if seen is not None:
                return Hit(int(seen), True)
        number = self.take_number()
        pipe = self.client.pipeline(transaction=False)
        if key:
            pipe.set(key_record(key), number, ex=self.ttl)
            if ledger_of(key):
                entry = {"key": key, "number": number, "instance": self.instance, "time": time.time()}
                pipe.rpush(ledger_of(key), json.dumps(entry))
                pipe.expire(ledger_of(key), self.ttl)
        pipe.hincrby(SERVED, self.instance, 1)
        pipe.execute()
        return Hit(number)


class SeedCounter(_NonAtomicCounter):
    def take_number(self):
        self.client.incr(COUNTER)
        return int(self.client.get(COUNTER))


class LocalCounter(_NonAtomicCounter):
    def __init__(self, client, instance, ttl, durability=None):
        super().__init__(client, instance, ttl)
        self._numbers = itertools.count(1)  # state in process memory: the anti-pattern itself

    def take_number(self):
        return next(self._numbers)


COUNTERS = {"atomic": AtomicCounter, "seed": SeedCounter, "local": LocalCounter}


def make_counter(mode, client, instance, ttl, durability=None):
    return COUNTERS[mode](client, instance, ttl, durability)
