"""The access log: one line per request, written to stderr in small batches.

    lines = Lines(sys.stderr)
    server = web.Server(handler, access_log_class=AccessLog, access_log=lines)
    await lines.keep_flushing()      # a background task; lines.flush() once more at exit

    2026-11-29T19:26:57 127.0.0.1 "POST /hits HTTP/1.1" 200 backend=127.0.0.1:5101 tries=1 2.134ms id=27af...

Batches, because at thousands of requests a second Python's logging module and a
write per line were over a tenth of the proxy's CPU; a line waits at most one
flush interval.
"""
import asyncio
import time

from aiohttp.abc import AbstractAccessLogger

from proxy.headers import REQUEST_ID, X_BACKEND, X_TRIES

BATCH = 256
FLUSH_INTERVAL = 0.2  # seconds a line may wait


class Lines:
    """Text lines held in memory until ``flush`` (every interval, or every ``BATCH`` lines)."""

    def __init__(self, stream):
        self.stream = stream
        self._pending = []
        self._second, self._stamp = None, ""

    def stamp(self):
        """Local time to the second, formatted once per second."""
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        return self._stamp

    def write(self, line):
        self._pending.append(line)
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self):
        if self._pending:
            self.stream.write("".join(self._pending))
            self.stream.flush()
            self._pending.clear()

    async def keep_flushing(self, interval=FLUSH_INTERVAL):
        while True:
            await asyncio.sleep(interval)
            self.flush()


class AccessLog(AbstractAccessLogger):
    """aiohttp's hook for access logging; ``self.logger`` is a ``Lines``."""

    def log(self, request, response, time):
        headers = response.headers
        version = request.version
        self.logger.write(
            f'{self.logger.stamp()} {request.remote} "{request.method} {request.raw_path} '
            f'HTTP/{version.major}.{version.minor}" {response.status} '
            f'backend={headers.get(X_BACKEND, "-")} tries={headers.get(X_TRIES, "-")} '
            f'{time * 1000:.3f}ms id={headers.get(REQUEST_ID, "-")}\n'
        )
