"""The formation's registry: which web instances are alive, kept in Redis.

    >>> registry = Registry(client, ttl=5)
    >>> registry.register({"name": "web.1", "address": "127.0.0.1:5100", "pid": 4242})
    >>> [entry["address"] for entry in registry.instances()]
    ['127.0.0.1:5100']

Each instance's entry expires after ``ttl`` seconds unless its heartbeat renews
it, so a process that dies without saying goodbye drops out by itself.
The proxy, ``scripts/ps`` and the chaos monkey all read it.
"""
import json
import threading

from common.schema import REGISTRY_PREFIX, registry_entry


def parse_entry(raw):
    """An entry as stored, or None when it is not a JSON object with an address."""
    try:
        entry = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("address"), str) else None


class Registry:
    def __init__(self, client, ttl=5.0):
        self.client, self.ttl = client, ttl

    def register(self, entry):
        self.client.set(registry_entry(entry["address"]), json.dumps(entry), px=int(self.ttl * 1000))

    def deregister(self, address):
        self.client.delete(registry_entry(address))

    def instances(self):
        keys = sorted(self.client.scan_iter(match=REGISTRY_PREFIX + "*", count=1000))
        raws = self.client.mget(keys) if keys else []
        return [e for e in map(parse_entry, raws) if e is not None]


class Heartbeat:
    """Renews one entry every ttl/3 seconds in a daemon thread until ``stop()``.

    Redis being away is not fatal: the beat keeps trying, and the entry comes back
    within one beat of Redis returning. Each beat SETs the whole entry (not only its
    TTL), so a Redis restarted empty (``REDIS_PERSISTENCE=none``) has it again too.
    Harmless races are not warnings: beats before the first success (Redis
    starting alongside, as under honcho) and a lone failed beat or deregistration
    while the formation stops (Redis went first; the entry expires by itself) are
    logged at info; two failed beats in a row after a success are a warning.
    """

    def __init__(self, registry, entry, log=None):
        self.registry, self.entry, self.log = registry, entry, log
        self._stopped = threading.Event()
        # Without the lock a beat in flight could re-register right after stop() deregistered.
        self._lock = threading.Lock()
        self._failures = 0  # failed beats in a row: the streak is logged once, not every beat
        self._registered = False  # a beat has succeeded once
        self._thread = threading.Thread(target=self._run, name="registry-heartbeat", daemon=True)

    def start(self):
        """Beat once here, then in the thread.

        The first beat runs the lazy imports of connecting (socket's idna codec among them)
        before a gunicorn master forks its workers: a fork that lands while the thread is
        half-way through an import leaves the child unable to finish that import, ever.
        """
        self._beat()
        self._thread.start()
        return self

    def _beat(self):
        try:
            with self._lock:
                if not self._stopped.is_set():
                    self.registry.register(self.entry)
            if self._failures and self._registered and self.log:
                self.log.info("registry heartbeat back after %d failed beat(s)", self._failures)
            self._failures, self._registered = 0, True
        except Exception as exc:  # any Redis or network error: keep beating
            self._failures += 1
            if self.log and not self._registered and self._failures == 1:
                self.log.info("registry: Redis does not answer yet (%s); retrying every %.1fs", exc,
                              self.registry.ttl / 3)
            elif self.log and self._registered and self._failures == 2:
                self.log.warning("registry heartbeat failed twice in a row: %s", exc)

    def _run(self):
        while not self._stopped.wait(self.registry.ttl / 3):
            self._beat()

    def stop(self):
        """Stop beating and remove the entry, so the proxy stops routing here at once."""
        with self._lock:
            self._stopped.set()
            try:
                self.registry.deregister(self.entry["address"])
            except Exception as exc:
                if self.log:
                    self.log.info("registry deregister skipped (%s): the entry expires within %.0fs",
                                  exc, self.registry.ttl)
