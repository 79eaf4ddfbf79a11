"""The backends in play: least-loaded (or round-robin) choice, passive and active health, draining.

    pool = Pool()                              # Pool(ROUND_ROBIN) for PROXY_BALANCE=round-robin
    pool.update({"127.0.0.1:5100": "web.1", "127.0.0.1:5101": "web.2"})
    [pool.pick().name for _ in range(3)]      # ['web.1', 'web.2', 'web.1']: all idle, so in turn
    pool.failed(pool.pick())                   # refused or reset: out of rotation ...
    await pool.probe(connections)              # ... until its GET /healthz answers 200

Least-loaded: the routable backend with the fewest requests in flight through
this proxy, round robin among equals, so an instance stuck on slow requests
gets new ones only once the others are as busy.

States: ``up`` (in rotation), ``down`` (skipped while another is up; probed
every health interval), ``draining`` (gone from the registry: no new
requests, in-flight ones finish, then it is forgotten).
"""
import asyncio
import logging
from dataclasses import asdict

from proxy.client import BrokenBody, NotDelivered, PossiblyDelivered
from proxy.config import parse_address
from proxy.metrics import Counters

UP, DOWN, DRAINING = "up", "down", "draining"
LEAST_LOADED, ROUND_ROBIN = "least-loaded", "round-robin"
# A pick's rank: not up, then already tried, then (least-loaded) requests in flight.
DOWN_RANK, TRIED_RANK = 1 << 41, 1 << 40

log = logging.getLogger("proxy.backends")


class Backend:
    __slots__ = ("address", "name", "state", "counters", "host", "port")

    def __init__(self, address, name):
        self.address, self.name = address, name
        self.state = UP
        self.counters = Counters()
        ip, self.port = parse_address(address)
        self.host = str(ip)

    def describe(self):
        return {"address": self.address, "name": self.name, "state": self.state, **asdict(self.counters)}


class Pool:
    def __init__(self, balance=LEAST_LOADED):
        if balance not in (LEAST_LOADED, ROUND_ROBIN):
            raise ValueError(f"balance must be {LEAST_LOADED} or {ROUND_ROBIN}, not {balance!r}")
        self.least_loaded = balance == LEAST_LOADED
        self._backends = {}  # address -> Backend, draining ones included
        self._ring = []  # the routable ones, in address order
        self._turn = 0

    def update(self, names):
        """Make ``names`` ({address: name}) the registered set; the rest drain."""
        for address, name in names.items():
            backend = self._backends.get(address)
            if backend is None:
                backend = self._backends[address] = Backend(address, name)
                log.info("backend %s (%s) added", address, name)
            elif backend.state == DRAINING:
                backend.state = UP
                log.info("backend %s (%s) registered again", address, name)
            backend.name = name
        for address, backend in list(self._backends.items()):
            if address in names:
                continue
            if backend.state != DRAINING:
                backend.state = DRAINING
                log.info("backend %s (%s) left the registry; draining %d in flight",
                         address, backend.name, backend.counters.in_flight)
            if not backend.counters.in_flight:
                del self._backends[address]
        self._ring = [b for _, b in sorted(self._backends.items()) if b.state != DRAINING]

    def pick(self, avoid=()):
        """The routable backend with the fewest requests in flight, the next in turn among equals;
        up ones before down ones, ones not in ``avoid`` before ones in it.

        When every candidate is down or already tried, one of those still beats
        giving up: a lone backend whose worker was killed usually has another.
        """
        ring = self._ring
        count = len(ring)
        least_loaded = self.least_loaded
        best, best_rank, best_step = None, 1 << 42, 0
        for step in range(count):
            backend = ring[(self._turn + step) % count]
            rank = (backend.state != UP) * DOWN_RANK + (backend in avoid) * TRIED_RANK
            if least_loaded:
                rank += backend.counters.in_flight
            if rank < best_rank:
                best, best_rank, best_step = backend, rank, step
                if not rank:
                    break
        if best is not None:
            self._turn = (self._turn + best_step + 1) % count
        return best

    def pinned(self, address):
        """The backend at ``address`` while it is up, else None: a sticky pin never overrides health or draining."""
        backend = self._backends.get(address)
        return backend if backend is not None and backend.state == UP else None

    def failed(self, backend):
        """Passive health: a refused or reset connection takes the backend out of rotation."""
        if backend.state == UP:
            backend.state = DOWN
            log.warning("backend %s (%s) down", backend.address, backend.name)

    async def probe(self, connections, timeout=1.0):
        """Active health: a down backend whose ``GET /healthz`` answers 200 is back up."""
        down = [b for b in self._ring if b.state == DOWN]
        answers = await asyncio.gather(*(healthy(connections, b, timeout) for b in down))
        for backend, ok in zip(down, answers):
            if ok and backend.state == DOWN:
                backend.state = UP
                log.info("backend %s (%s) up again", backend.address, backend.name)

    async def keep_probing(self, connections, interval):
        while True:
            await self.probe(connections, timeout=max(interval, 0.5))
            await asyncio.sleep(interval)

    def addresses(self):
        return [b.address for b in self._ring]

    def describe(self):
        return [b.describe() for _, b in sorted(self._backends.items())]


async def healthy(connections, backend, timeout):
    head = b"GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n" % backend.address.encode()
    try:
        async with asyncio.timeout(timeout):
            response = await connections.send(backend, head, b"", timeout=timeout)
            while response.body is None and await response.read():
                pass
    except (NotDelivered, PossiblyDelivered, BrokenBody, TimeoutError):
        return False
    return response.status == 200
