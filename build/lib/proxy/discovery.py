"""Where the backends come from: the Redis registry, read often, through the allow-list.

    watcher = RegistryWatcher(redis.asyncio.Redis.from_url(url), pool, config.allows)
    await watcher.refresh()                  # once, before the proxy opens its port
    await watcher.keep_refreshing(0.25)      # then SCAN+MGET every 0.25 s, forever

An entry whose address is outside ``PROXY_ALLOW`` is ignored, with one warning
while it stays, so a stray entry cannot make the proxy dial another host or port
on the registry's say-so. While Redis is unreachable the last known set stays:
passive health still takes dead backends out of rotation.
(``PROXY_BACKENDS`` bypasses all this: ``pool.update`` once with the static list.)
"""
import asyncio
import logging

from redis.exceptions import RedisError

from web.registry import parse_entry
from web.schema import REGISTRY_PREFIX

log = logging.getLogger("proxy.discovery")


class RegistryWatcher:
    def __init__(self, client, pool, allows):
        self.client, self.pool, self.allows = client, pool, allows
        self._rejected = set()
        self._failing = False

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
                log.warning("registry unreadable, keeping the last known backends: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("registry readable again")
        self._failing = False
        self.pool.update(names)

    async def keep_refreshing(self, interval):
        while True:
            await asyncio.sleep(interval)
            await self.refresh()
