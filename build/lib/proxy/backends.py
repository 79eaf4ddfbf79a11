"""The backends in play: round-robin choice, passive and active health, draining.

    pool = Pool()
    pool.update({"127.0.0.1:5100": "web.1", "127.0.0.1:5101": "web.2"})
    [pool.pick().name for _ in range(3)]      # ['web.1', 'web.2', 'web.1']
    pool.failed(pool.pick())                   # refused or reset: out of rotation ...
    await pool.probe(session)                  # ... until its GET /healthz answers 200

States: ``up`` (in rotation), ``down`` (skipped while another is up; probed
every health interval), ``draining`` (gone from the registry: no new
requests, in-flight ones finish, then it is forgotten).
"""
import asyncio
import logging
from dataclasses import asdict

import aiohttp

from proxy.metrics import Counters

UP, DOWN, DRAINING = "up", "down", "draining"

log = logging.getLogger("proxy.backends")


class Backend:
    __slots__ = ("address", "name", "state", "counters", "url")

    def __init__(self, address, name):
        self.address, self.name = address, name
        self.state = UP
        self.counters = Counters()
        self.url = f"http://{address}"

    def describe(self):
        return {"address": self.address, "name": self.name, "state": self.state, **asdict(self.counters)}


class Pool:
    def __init__(self):
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
        """The next backend in turn, preferring ones that are up and not in ``avoid``.

        When every candidate is down or already tried, one of those still beats
        giving up: a lone backend whose worker was killed usually has another.
        """
        ring = self._ring
        best, best_rank, best_step = None, 4, 0
        for step in range(len(ring)):
            backend = ring[(self._turn + step) % len(ring)]
            rank = (backend.state != UP) * 2 + (backend in avoid)
            if rank < best_rank:
                best, best_rank, best_step = backend, rank, step
                if not rank:
                    break
        if best is not None:
            self._turn = (self._turn + best_step + 1) % len(ring)
        return best

    def failed(self, backend):
        """Passive health: a refused or reset connection takes the backend out of rotation."""
        if backend.state == UP:
            backend.state = DOWN
            log.warning("backend %s (%s) down", backend.address, backend.name)

    async def probe(self, session, timeout=1.0):
        """Active health: a down backend whose ``GET /healthz`` answers 200 is back up."""
        down = [b for b in self._ring if b.state == DOWN]
        answers = await asyncio.gather(*(healthy(session, b.url, timeout) for b in down))
        for backend, ok in zip(down, answers):
            if ok and backend.state == DOWN:
                backend.state = UP
                log.info("backend %s (%s) up again", backend.address, backend.name)

    async def keep_probing(self, session, interval):
        while True:
            await self.probe(session, timeout=max(interval, 0.5))
            await asyncio.sleep(interval)

    def addresses(self):
        return [b.address for b in self._ring]

    def describe(self):
        return [b.describe() for _, b in sorted(self._backends.items())]


async def healthy(session, url, timeout):
    try:
        async with session.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=timeout),
                               allow_redirects=False) as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False
