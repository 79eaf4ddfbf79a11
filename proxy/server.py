"""The client side: HTTP/1.1 connections parsed by httptools (llhttp), answered in order, drained on SIGTERM.

    server = Server(config, handle, totals, access_log)     # handle(request) is a coroutine
    listener = await loop.create_server(server.connection, config.host, config.port)
    ...
    await server.drain(listener, config.drain_timeout)      # SIGTERM: stop accepting, finish what is in flight

``handle`` gets each request with its body read whole (so a retry can send it
again and a slow sender never holds a backend), one at a time per connection,
and answers it through the request: ``request.respond(...)``, ``request.json(...)``,
or ``request.start(...)`` then ``await request.write(chunk)`` and ``request.finish()``.

What is refused here, before anything is forwarded, is ``proxy.limits``'s to say.
"""
import asyncio
import logging
import time
from collections import deque

import httptools

from proxy.headers import connection_tokens
from proxy.limits import (NO_VERSION, body_refusal, head_refusal, head_too_large, header_refusal, line_refusal,
                          request_line)
from proxy.request import CONTINUE, Refusal, Request

log = logging.getLogger("proxy.server")

# Headers the server itself reads; every header is still passed on as sent.
NOTED = frozenset((b"host", b"connection", b"expect", b"content-length", b"transfer-encoding",
                   b"idempotency-key", b"x-request-id", b"x-forwarded-for"))


class Connection(asyncio.Protocol):
    """One client connection: parse, check, hand whole requests to the handler in order, write answers."""

    def __init__(self, server):
        self.server, self.config, self.loop = server, server.config, server.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport = self.remote = self.sockname = None
        self.request = None  # being parsed
        self.current = None  # being handled
        self.task = None
        self.queue = deque()  # parsed, waiting their turn (pipelining)
        self.refusal = None  # raised from a parser callback
        self.at_line, self.line = True, b""
        self.head_bytes = 0
        self.deadline = self.timer = None
        self.closed = self.refusing = self.read_paused = self.write_paused = False
        self._writable = None

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if peer else None
        self.sockname = transport.get_extra_info("sockname")
        self.server.connections.add(self)
        timeout = self.config.client_timeout
        self.deadline = self.loop.time() + timeout
        self.timer = self.loop.call_later(timeout, self._on_timer)

    def connection_lost(self, exc):
        self.closed = True
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        self.resume_writing()

    def pause_writing(self):
        self.write_paused = True

    def resume_writing(self):
        self.write_paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def writable(self):
        self._writable = self.loop.create_future()
        await self._writable

    def data_received(self, data):
        if self.refusing:
            return
        if self.at_line and not self._line_has_version(data):
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Connection: upgrade. The request went into the queue whole; what follows is not
            # HTTP, and the proxy upgrades nothing, so the connection ends after the answer.
            self.refusing = True
            for request in (self.current, *self.queue):
                if request is not None:
                    request.keep_alive = False
            self.transport.pause_reading()
            return
        except httptools.HttpParserError as exc:
            refusal, self.refusal = self.refusal, None
            self._refuse(refusal or Refusal(400, f"malformed request: {exc}"))
            return
        if self.request is not None and not self.request.headers_done:
            self.head_bytes += len(data)
            refusal = head_too_large(self.head_bytes, self.config)
            if refusal is not None:
                self._refuse(refusal)
        elif self.queue and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def eof_received(self):
        if self.current is None and not self.queue:
            return False  # close
        # Half-closed: answer what is in flight, then close.
        self.refusing = True
        for request in (self.current, *self.queue):
            request.keep_alive = False
        return True

    def _line_has_version(self, data):
        """False, and refused at once, when the request line just ended without ``HTTP/x.y``."""
        has_version, self.line = request_line(self.line + data if self.line else data, self.config.max_header_line)
        if has_version is None:
            return True
        self.at_line = False
        if not has_version:
            self._refuse(Refusal(400, NO_VERSION))
        return has_version

    # httptools callbacks
    def on_message_begin(self):
        self.request = Request(self)
        self.head_bytes = 0
        if self.deadline is None:
            self.deadline = self.loop.time() + self.config.client_timeout

    def _fail(self, refusal):
        self.refusal = refusal
        return refusal

    def on_url(self, url):
        request = self.request
        request.target += url
        refusal = line_refusal(len(request.target), self.config)
        if refusal is not None:
            raise self._fail(refusal)

    def on_header(self, name, value):
        request = self.request
        request.count += 1
        refusal = header_refusal(request.count, name, value, self.config)
        if refusal is not None:
            raise self._fail(refusal)
        lower = name.lower()
        if lower in NOTED:
            if lower == b"host":
                if request.host is not None:
                    raise self._fail(Refusal(400, "more than one Host header"))
                request.host = value
            elif lower == b"connection":
                request.connection += connection_tokens(value)
            elif lower == b"expect":
                request.expect = value
            elif lower == b"content-length":
                request.content_length = int(value)  # llhttp has checked it is digits
            elif lower == b"transfer-encoding":
                request.chunked = True  # llhttp has checked that chunked comes last
            elif lower == b"idempotency-key":
                request.key = value.decode("latin-1")
            elif lower == b"x-request-id":
                request.given_id = value
            else:  # x-forwarded-for: several are one list
                request.forwarded_for = request.forwarded_for + b", " + value if request.forwarded_for else value
        request.headers.append((name, value))

    def on_headers_complete(self):
        request, parser, config = self.request, self.parser, self.config
        request.headers_done = True
        request.method = parser.get_method()
        request.version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        refusal = head_refusal(request.method, request.version, request.host, request.content_length,
                               request.expect, config)
        if refusal is not None:
            raise self._fail(refusal)
        if (request.expect is not None and request.version == "1.1" and (request.content_length or request.chunked)
                and self.current is None):
            self.transport.write(CONTINUE)  # 100-continue, the only Expect head_refusal lets through

    def on_body(self, body):
        request = self.request
        request.size += len(body)
        if request.size > self.config.max_body:
            raise self._fail(body_refusal(self.config))
        request.parts.append(body)

    def on_message_complete(self):
        request, self.request = self.request, None
        if request.parts:  # one part is joined without a copy
            request.body, request.parts = b"".join(request.parts), None
        self.deadline = None
        self._take_turn(request)

    # Turns
    def _take_turn(self, request):
        """Handle ``request`` now, or after the ones before it on this connection (pipelining)."""
        if self.current is None:
            self._start(request)
        else:
            self.queue.append(request)

    def _refuse(self, refusal):
        """Answer a request that cannot be parsed or must not go on; after the ones before it."""
        self.refusing = True
        self.deadline = None
        if not self.closed:
            self.transport.pause_reading()
        request = self.request or Request(self)
        self.request = None
        request.refusal = refusal
        self._take_turn(request)

    def _start(self, request):
        self.current = request
        if request.refusal is not None:
            refusal = request.refusal
            self.server.totals.requests += 1
            self.server.totals.refused += 1
            request.json(refusal.status, {"error": str(refusal)}, close=refusal.close)
            self._done(request)
        else:
            self.task = self.loop.create_task(self._run(request))

    async def _run(self, request):
        try:
            await self.server.handle(request)
        except Exception:
            log.exception("request failed inside the proxy")
            if request.status is None:
                request.json(500, {"error": "internal error in the proxy"}, close=True)
            else:
                request.abort()
        self._done(request)

    def _done(self, request):
        self.server.finished(request)
        self.current = self.task = None
        if self.closed:
            return
        if not request.keep_alive:
            self.transport.close()
            return
        if self.queue:
            self._start(self.queue.popleft())
            return
        if self.read_paused and not self.refusing:
            self.read_paused = False
            self.transport.resume_reading()
        if self.request is None:
            self.at_line = True
            self.deadline = self.loop.time() + self.config.client_timeout

    def _on_timer(self):
        self.timer = None
        if self.closed:
            return
        timeout = self.config.client_timeout
        left = timeout if self.deadline is None else self.deadline - self.loop.time()
        if left > 0:
            self.timer = self.loop.call_later(left, self._on_timer)
            return
        if self.request is None and self.current is None and not self.queue:
            self.transport.close()  # an idle keep-alive connection: nothing to answer
            return
        what = "body" if self.request is not None and self.request.headers_done else "request"
        self._refuse(Refusal(408, f"{what} not received within PROXY_CLIENT_TIMEOUT={timeout}s"))

    def close_if_idle(self):
        if self.current is None and not self.queue and not self.closed:
            self.transport.close()


class Server:
    """The listening side's shared state: the handler, the open connections, the totals and access log."""

    def __init__(self, config, handle, totals, access_log=None):
        self.config, self.handle, self.totals, self.access_log = config, handle, totals, access_log
        self.loop = asyncio.get_running_loop()
        self.connections = set()
        self.stopping = False

    def connection(self):
        return Connection(self)

    def finished(self, request):
        seconds = time.monotonic() - request.started
        if request.refusal is not None:
            self.totals.finished(request.status, seconds)
        if self.access_log is not None:
            self.access_log.request(request, seconds)

    def in_flight(self):
        return sum(1 for conn in self.connections if conn.current is not None or conn.queue)

    async def drain(self, listener, timeout):
        """Stop accepting at once, let requests in flight finish (up to ``timeout`` s), then close the rest."""
        self.stopping = True
        listener.close()
        deadline = self.loop.time() + timeout
        while True:
            for conn in list(self.connections):
                conn.close_if_idle()
            if not self.in_flight() or self.loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.transport.close()
