"""Where the backends come from: the Redis registry, read often, through the allow-list.

    client = connect_async(config.redis_url, config.redis_timeout, config.redis_sentinels)  # common.redis_client
    watcher = RegistryWatcher(client, pool, config.allows)
    await watcher.refresh()                  # once, before the proxy opens its port
    await watcher.keep_refreshing(0.25)      # then SCAN+MGET every 0.25 s, forever

An entry whose address is outside ``PROXY_ALLOW`` is ignored, with one warning
while it stays, so a stray entry cannot make the proxy dial another host or port
on the registry's say-so. While Redis is unreachable the last known set stays:
passive health still takes dead backends out of rotation. When Redis answers
again it may have come back empty (restarted without persistence) or with entries
expired while it was frozen; the instances re-register within one heartbeat, so
for ``grace`` seconds after an outage, or after a read that found the registry
emptied all at once (a restart quicker than one poll), every backend read is
added to the last known set rather than replacing it. ``state`` says which of these holds, and
``/_proxy/metrics`` shows it as ``discovery``.
(``PROXY_BACKENDS`` bypasses all this: ``pool.update`` once with the static list.)

    >>> watcher = RegistryWatcher(client=None, pool=None, allows=None, grace=3.0)
    >>> watcher.state(now=0.0)
    'reading the registry'
"""
import asyncio
import logging
import time

from redis.exceptions import RedisError

from common.registry import parse_entry
from common.schema import REGISTRY_PREFIX

log = logging.getLogger("proxy.discovery")


READING, UNREADABLE, GRACE = "reading the registry", "registry unreadable: routing to the last known backends", \
    "registry back after an outage: adding to the last known backends while instances re-register"


class RegistryWatcher:
    def __init__(self, client, pool, allows, grace=3.0):
        self.client, self.pool, self.allows, self.grace = client, pool, allows, grace
        self._rejected = set()
        self._failing = False
        self._known = {}
        self._grace_until = 0.0

    def state(self, now=None):
        if self._failing:
            return UNREADABLE
        return GRACE if (time.monotonic() if now is None else now) < self._grace_until else READING

    async def read(self):
        """{address: name} of the allowed, well-formed registry entries."""
        keys = [key async for key in self.client.scan_iter(match=REGISTRY_PREFIX + "*", count=1000)]
        entries = [parse_entry(raw) for raw in (await self.client.mget(keys) if keys else [])]
        names, rejected = {}, set()
        for entry in filter(None, entries):
            address = entry["address"]
            if self.allows(address):
                names[address] = str(entry.get("name") or address)
            else:
                rejected.add(address)
        for address in sorted(rejected - self._rejected):
            log.warning("ignoring registry entry %r: not an ip:port inside PROXY_ALLOW", address)
        self._rejected = rejected
        return names

    async def refresh(self):
        try:
            names = await self.read()
        except (RedisError, OSError) as exc:
            if not self._failing:
                # Before the first read Redis is most likely still starting alongside (as under honcho): no alarm.
                (log.warning if self._known else log.info)("registry unreadable, keeping the last known backends: %s",
                                                           exc)
            self._failing = True
            return
        # Back after an outage, or emptied all at once (a restart that lost the data, which can be
        # quicker than one poll): the instances re-register within a heartbeat, so wait for them.
        if self._failing or (self._known and not names and self.state() != GRACE):
            log.info("registry %s: keeping the last known backends for %.1fs more",
                     "readable again" if self._failing else "empty all at once", self.grace)
            self._grace_until = time.monotonic() + self.grace
        self._failing = False
        if self.state() == GRACE:
            names = {**self._known, **names}
        self._known = names
        self.pool.update(names)

    async def keep_refreshing(self, interval):
        while True:
            await asyncio.sleep(interval)
            await self.refresh()
