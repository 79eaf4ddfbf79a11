"""The formation identity a web process reports: on every answer, and in its registry entry.

    identity = Identity(config.formation, client)     # FORMATION_ID, or '' to read it from Redis
    identity.get()                                    # 'f3c9a1b2d4e5', or None while Redis holds none
    registry = IdentifiedRegistry(client, ttl, identity)

A formation started with ``FORMATION_ID`` gives it to every process; without it the backing supervisor makes one
and writes it into Redis (backing/supervisor.py), where a web process reads it, once it is there: an identity
read is kept, so a Redis that restarted empty (``REDIS_PERSISTENCE=none``) does not change it, and until then
it is read again at most once a second. A reader (the Locust plugin, ``scripts/ps``) comparing the identity an
instance reports with the one in the Redis it reads itself knows whether it reads this formation's Redis.
"""
import threading
import time

from redis.exceptions import RedisError

from common.registry import Registry
from common.schema import FORMATION_KEY

READ_EVERY_S = 1.0


class Identity:
    def __init__(self, given, client):
        self.known, self.client = given or None, client
        self.tried = 0.0  # monotonic time of the last read
        self.lock = threading.Lock()

    def get(self):
        if self.known:
            return self.known
        with self.lock:
            if not self.known and time.monotonic() - self.tried >= READ_EVERY_S:
                self.tried = time.monotonic()
                try:
                    self.known = self.client.get(FORMATION_KEY)
                except RedisError:
                    pass  # the request itself says Redis is away
        return self.known


class IdentifiedRegistry(Registry):
    """The registry, each entry with the formation identity its instance knows (once it knows one)."""

    def __init__(self, client, ttl, identity):
        super().__init__(client, ttl)
        self.identity = identity

    def register(self, entry):
        known = self.identity.get()
        super().register({**entry, "formation": known} if known else entry)
