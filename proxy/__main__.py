"""Entry point: wire the parts together, serve, and drain on SIGTERM.

    $ PROXY_PORT=8000 REDIS_URL=redis://127.0.0.1:6379/0 python -m proxy
    $ REDIS_SENTINELS=127.0.0.1:26379,127.0.0.1:26380 python -m proxy     # the registry on whichever is primary
    $ PROXY_BACKENDS=127.0.0.1:5100,127.0.0.1:5101 python -m proxy

SIGTERM (or SIGINT): the listening socket closes at once, in-flight requests
get up to ``PROXY_DRAIN_TIMEOUT`` to finish, then the process exits 0. A bad
setting exits 2 with the reason. The event loop is uvloop's unless ``PROXY_LOOP=asyncio``.
"""
import asyncio
import contextlib
import logging
import signal
import sys

from proxy.accesslog import Lines
from proxy.app import create_handler
from proxy.backends import Pool
from proxy.client import Connections
from proxy.config import Config
from proxy.discovery import RegistryWatcher
from proxy.forward import Forwarder
from proxy.metrics import Totals
from proxy.server import Server
from common.redis_client import connect_async

log = logging.getLogger("proxy")


class CannotListen(Exception):
    """The proxy's address cannot be bound: one line, exit status 2, no traceback."""


@contextlib.asynccontextmanager
async def discovered(config, pool):
    """Fill ``pool`` from the static list, or from the registry for as long as the block runs;
    yields what says where the backends come from now."""
    if config.static_backends:
        pool.update({address: address for address in config.static_backends})
        yield lambda: "static list (PROXY_BACKENDS)"
        return
    client = connect_async(config.redis_url, config.redis_timeout, config.redis_sentinels)
    watcher = RegistryWatcher(client, pool, config.allows, config.registry_grace)
    await watcher.refresh()
    task = asyncio.create_task(watcher.keep_refreshing(config.poll_interval))
    try:
        yield watcher.state
    finally:
        task.cancel()
        await client.aclose()


async def serve(config):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    pool, totals, connections = Pool(config.balance), Totals(), Connections(config)
    access_log = Lines(sys.stderr) if config.access_log else None
    async with discovered(config, pool) as discovery:
        background = [asyncio.create_task(pool.keep_probing(connections, config.health_interval)),
                      asyncio.create_task(connections.keep_sweeping())]
        if access_log:
            background.append(asyncio.create_task(access_log.keep_flushing()))
        handle = create_handler(config, pool, Forwarder(config, pool, connections, totals), totals, discovery)
        server = Server(config, handle, totals, access_log)
        try:
            try:
                listener = await loop.create_server(server.connection, config.host, config.port,
                                                    reuse_address=True, backlog=1024)
            except OSError as exc:  # the port is taken, or the address is not this host's
                raise CannotListen(f"cannot listen on {config.host}:{config.port} ({exc.strerror or exc}):"
                                   f" set PROXY_PORT (or PROXY_HOST) to a free one") from None
            log.info("listening on http://%s:%d/ with backends %s (%s, %s loop)", config.host, config.port,
                     ", ".join(pool.addresses()) or "none yet", config.balance, config.loop)
            await stop.wait()
            log.info("stopping: no new connections, draining %d in-flight requests", server.in_flight())
            # Closes the listener, then waits for the requests in flight; the health
            # task and registry keep running meanwhile, so retries still work.
            await server.drain(listener, config.drain_timeout)
        finally:
            for task in background:
                task.cancel()
            connections.close()
            if access_log:
                access_log.flush()
    log.info("stopped")


def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = Config.from_env()
    except ValueError as exc:
        log.error("bad setting: %s", exc)
        return 2
    try:
        if config.loop == "uvloop":
            import uvloop
            uvloop.run(serve(config))
        else:
            asyncio.run(serve(config))
    except CannotListen as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
