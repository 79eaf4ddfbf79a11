"""One parsed request and the ways to answer it: whole, as JSON, or streamed.

    request.respond(200, b"OK", [b"Content-Length: 2\r\n"], b"hi")     # head and body in one write
    request.json(404, {"error": "no such thing"})
    request.start(200, b"OK", lines, sized=False)                        # chunked to an HTTP/1.1 client
    await request.write(chunk); request.finish()                         # or request.abort() if it broke

``proxy.server`` fills it in as it parses (the facts the proxy needs are
pulled out of the headers on the way) and hands it over with its body whole.
Every answer says ``Connection: close`` when the connection will not carry
another request (asked for, refused, or the proxy is draining).
"""
import json
import time
from http import HTTPStatus

PHRASES = {status.value: status.phrase.encode() for status in HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
JSON_TYPE = b"Content-Type: application/json; charset=utf-8\r\n"
class Refusal(Exception):
    """A request the proxy answers itself, with a 4xx, instead of forwarding it."""

    def __init__(self, status, message, close=True):
        super().__init__(message)
        self.status, self.close = status, close


class Request:
    """One parsed request and the way to answer it; facts the proxy needs are pulled out as it parses."""

    __slots__ = ("conn", "method", "target", "version", "headers", "host", "connection", "expect",
                 "content_length", "chunked", "key", "given_id", "forwarded_for", "body", "parts", "size",
                 "count", "headers_done", "keep_alive", "refusal", "started", "status", "backend", "tries", "rid",
                 "_chunked_out")

    def __init__(self, conn):
        self.conn = conn
        self.method = b"-"
        self.target = b""
        self.version = "1.1"
        self.headers = []
        self.host = self.expect = self.content_length = self.key = self.given_id = None
        self.connection = ()
        self.forwarded_for = b""
        self.body = b""
        self.parts = []
        self.size = self.count = 0
        self.chunked = self.headers_done = self._chunked_out = False
        self.keep_alive = True
        self.refusal = None
        self.started = time.monotonic()  # uvloop's loop.time() counts whole milliseconds
        self.status = None
        self.backend = self.tries = self.rid = None

    # Answers. Each ends the exchange except ``start``, which ``finish`` or ``abort`` must follow.
    def respond(self, status, reason, lines, body, close=False):
        """``lines``: a list of ``b"Name: value\\r\\n"`` pieces; ``body`` goes in the same write."""
        self.status = status
        conn = self.conn
        keep = self.keep_alive = self.keep_alive and not close and not conn.server.stopping
        if not keep:
            lines.append(b"Connection: close\r\n")
        elif self.version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        if self.method != b"HEAD":
            lines.append(body)
        if not conn.closed:
            conn.transport.write(b"HTTP/1.1 %d %s\r\n%s" % (status, reason, b"".join(lines)))

    def json(self, status, payload, lines=None, close=False):
        body = json.dumps(payload).encode()
        lines = [JSON_TYPE, b"Content-Length: %d\r\n" % len(body), *(lines or ())]
        self.respond(status, PHRASES.get(status, b""), lines, body, close)

    def start(self, status, reason, lines, sized):
        """Send the head of a response whose body follows in ``write`` calls (``sized``: it has a Content-Length)."""
        self._chunked_out = not sized and self.version == "1.1" and self.method != b"HEAD"
        if self._chunked_out:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        self.respond(status, reason, lines, b"", close=not (sized or self._chunked_out))

    async def write(self, chunk):
        conn = self.conn
        if conn.closed:
            return
        conn.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if self._chunked_out else chunk)
        if conn.write_paused:
            await conn.writable()

    def finish(self):
        if self._chunked_out and not self.conn.closed:
            self.conn.transport.write(b"0\r\n\r\n")

    def abort(self):
        """Cut the connection: a body that broke must not look whole."""
        self.keep_alive = False
        if not self.conn.closed:
            self.conn.transport.close()
