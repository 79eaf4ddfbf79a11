"""The access log: one line per request, written to stderr in small batches.

    lines = Lines(sys.stderr)
    server = Server(config, handle, totals, access_log=lines)   # calls lines.request(request, seconds)
    await lines.keep_flushing()      # a background task; lines.flush() once more at exit

    2026-11-29T19:26:57 127.0.0.1 "POST /hits HTTP/1.1" 200 backend=127.0.0.1:5101 tries=1 2.134ms id=27af...

Batches, because at thousands of requests a second Python's logging module and a
write per line were over a tenth of the proxy's CPU; a line waits at most one
flush interval.
"""
import asyncio
import time

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

    def request(self, request, seconds):
        """The line for one answered request (a ``server.Request``)."""
        self.write(
            f'{self.stamp()} {request.conn.remote} "{request.method.decode("latin-1")} '
            f'{request.target[:200].decode("latin-1")} HTTP/{request.version}" {request.status} '
            f'backend={request.backend or "-"} tries={request.tries or "-"} '
            f'{seconds * 1000:.3f}ms id={request.rid or "-"}\n'
        )

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
