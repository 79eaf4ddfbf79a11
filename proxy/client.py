"""The backend side: a keep-alive connection pool of its own, responses parsed by httptools, a verdict on every failure.

    connections = Connections(config)
    try:
        response = await connections.send(backend, b"GET /hits HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", b"")
    except NotDelivered:       # nothing reached the backend: safe to try another
        ...
    except PossiblyDelivered:  # the backend may have acted: only a keyed request may go again
        ...
    except BrokenBody:         # the head came, the body broke: nothing may go again
        ...
    response.status, response.body   # body None: it streams, ``await response.read()`` until b""

A response sized within ``PROXY_BUFFER`` arrives whole (``send`` returns once
its last byte is in); any other streams. No request is ever sent twice here:
unlike aiohttp's client, which re-sends a GET on a pooled connection found dead,
every re-send is the retry policy's decision (``proxy.forward``).
``PROXY_TIMEOUT`` bounds the wait for the head and every stall in the body.
"""
import asyncio
from collections import deque

import httptools

from proxy.headers import connection_tokens

# gunicorn closes an idle keep-alive connection after 5 s; closing ours sooner means
# a request rarely lands on a socket the backend is closing at that very moment.
IDLE_KEEPALIVE = 2.0
# Chunks held for a slow client before the backend's socket stops being read.
HIGH_WATER, LOW_WATER = 16, 4


class NotDelivered(Exception):
    """The connection was never made (refused, connect timeout): no byte reached the backend."""


class PossiblyDelivered(Exception):
    """The request was (maybe partly) sent and no response head came back: the outcome is unknown."""

    def __init__(self, message, timed_out=False):
        super().__init__(message)
        self.timed_out = timed_out


class BrokenBody(Exception):
    """The response head came, then its body broke off or stalled."""


def describe(exc):
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Response:
    """One response's head, and its body when it came whole."""

    __slots__ = ("status", "reason", "headers", "connection", "content_length", "chunked", "body", "upstream")

    def __init__(self):
        self.reason = b""
        self.headers = []
        self.connection = ()
        self.content_length = None
        self.chunked = False
        self.body = self.upstream = self.status = None

    async def read(self):
        """The next chunk of a streamed body; b"" at its end. Raises BrokenBody."""
        return await self.upstream.read()


class Upstream(asyncio.Protocol):
    """One connection to one backend, carrying one exchange at a time."""

    def __init__(self, pool, address):
        self.pool, self.address, self.loop = pool, address, pool.loop
        self.parser = httptools.HttpResponseParser(self)
        self.transport = None
        self.closed = False
        self.idle_since = 0.0
        self.response = self.waiter = self.timer = self.reader = None
        self.chunks = deque()
        self.busy = self.head_done = self.streaming = self.done = self.head_only = self.interim = False
        self.keep = self.read_paused = False
        self.error = None
        self.last = 0.0
        self.timeout = pool.timeout

    # The exchange
    def send(self, head, body, head_only, timeout):
        self.busy, self.head_done, self.streaming, self.done, self.head_only = True, False, False, False, head_only
        self.response, self.error = Response(), None
        self.waiter = self.loop.create_future()
        self.timeout = timeout
        self.last = self.loop.time()
        self.timer = self.loop.call_later(timeout, self._on_timer)
        self.transport.write(head + body if body else head)
        return self.waiter

    async def read(self):
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.last = self.loop.time()  # a slow client is no stall of the backend's
                if self.read_paused and len(self.chunks) < LOW_WATER:
                    self.read_paused = False
                    self.transport.resume_reading()
                return chunk
            if self.error is not None:
                raise self.error
            if self.done:
                self._finished()
                return b""
            self.reader = self.loop.create_future()
            await self.reader

    def _wake(self, future, exc=None):
        if future is not None and not future.done():
            if exc is None:
                future.set_result(self.response)
            else:
                future.set_exception(exc)

    def _fail(self, message, timed_out=False):
        """The connection broke (or stalled) in the middle of an exchange."""
        if self.head_done:
            self.error = BrokenBody(message)
            self._wake(self.waiter, self.error)
            self._wake(self.reader)
        else:
            self._wake(self.waiter, PossiblyDelivered(message, timed_out))
        self.waiter = None
        self._close()

    def _finished(self):
        """The exchange is over: back to the pool if the connection may carry another."""
        self.busy = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.keep and not self.closed:
            self.pool.release(self)
        else:
            self._close()

    def _close(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.closed:
            self.closed = True
            self.transport.close()

    def _on_timer(self):
        self.timer = None
        if not self.busy or self.closed:
            return
        left = self.last + self.timeout - self.loop.time()
        if left > 0:
            self.timer = self.loop.call_later(left, self._on_timer)
        else:
            self._fail(f"TimeoutError: no data from the backend within PROXY_TIMEOUT={self.timeout}s", timed_out=True)

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.last = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"bad response from the backend: {exc}")

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        was_closed, self.closed = self.closed, True
        self.pool.forget(self)
        if not self.busy or self.done:
            return
        response = self.response
        if self.head_done and response.content_length is None and not response.chunked:
            self.done, self.keep = True, False  # a body that ends with the connection
            self._wake(self.reader)
        elif not was_closed:
            self._fail(describe(exc) if exc else "ServerDisconnectedError: the backend closed the connection")

    # httptools callbacks
    def on_message_begin(self):
        self.response.headers = []
        self.response.reason = b""

    def on_status(self, reason):
        self.response.reason += reason

    def on_header(self, name, value):
        response = self.response
        response.headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            response.content_length = int(value)
        elif lower == b"connection":
            response.connection += connection_tokens(value)
        elif lower == b"transfer-encoding":
            response.chunked = True

    def on_headers_complete(self):
        response = self.response
        status = response.status = self.parser.get_status_code()
        self.interim = status < 200 and status != 101
        if self.interim:  # 100 Continue and the like: the real head follows
            response.content_length, response.chunked, response.connection = None, False, ()
            return
        self.head_done = True
        if self.head_only or status in (204, 304):
            response.body = b""
            self.keep = not self.head_only and self.parser.should_keep_alive()
            self.done = True
            self._wake(self.waiter)
            self.waiter = None
            self._finished()  # a HEAD response's Content-Length is no body: llhttp cannot be told, so no reuse
        elif response.content_length is None or response.content_length > self.pool.buffer:
            self.streaming = True
            response.upstream = self
            self._wake(self.waiter)
            self.waiter = None

    def on_body(self, body):
        self.chunks.append(body)
        if self.streaming:
            if self.reader is not None:
                self._wake(self.reader)
                self.reader = None
            if len(self.chunks) > HIGH_WATER and not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()

    def on_message_complete(self):
        if self.interim or self.done:
            return
        self.done = True
        self.keep = self.parser.should_keep_alive()
        if self.streaming:
            self._wake(self.reader)
            self.reader = None
            return
        chunks = self.chunks
        self.response.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._wake(self.waiter)
        self.waiter = None
        self._finished()


class Connections:
    """Idle keep-alive connections per backend address, newest first out; no limit on how many."""

    def __init__(self, config):
        self.loop = asyncio.get_running_loop()
        self.connect_timeout, self.timeout, self.buffer = config.connect_timeout, config.timeout, config.buffer
        self.idle = {}  # address -> [Upstream], the most recently used last

    async def send(self, backend, head, body, head_only=False, timeout=None):
        idle = self.idle.get(backend.address)
        upstream = idle.pop() if idle else None
        if upstream is None:
            upstream = await self._connect(backend)
        return await upstream.send(head, body, head_only, timeout or self.timeout)

    async def _connect(self, backend):
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, upstream = await self.loop.create_connection(
                    lambda: Upstream(self, backend.address), backend.host, backend.port)
        except (OSError, TimeoutError) as exc:
            raise NotDelivered(describe(exc)) from exc
        return upstream

    def release(self, upstream):
        upstream.idle_since = self.loop.time()
        self.idle.setdefault(upstream.address, []).append(upstream)

    def forget(self, upstream):
        idle = self.idle.get(upstream.address)
        if idle and upstream in idle:
            idle.remove(upstream)

    def sweep(self, now=None):
        """Close the connections idle for longer than ``IDLE_KEEPALIVE``."""
        horizon = (self.loop.time() if now is None else now) - IDLE_KEEPALIVE
        for address, idle in list(self.idle.items()):
            stale = [u for u in idle if u.idle_since < horizon]
            for upstream in stale:
                idle.remove(upstream)
                upstream._close()
            if not idle:
                del self.idle[address]

    async def keep_sweeping(self, interval=0.5):
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    def close(self):
        for idle in self.idle.values():
            for upstream in list(idle):
                upstream._close()
        self.idle.clear()
