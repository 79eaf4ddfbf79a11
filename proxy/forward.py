"""The retry policy: which failed tries may be made again, where, and how often.

    forwarder = Forwarder(config, pool, connections, totals)
    await forwarder.forward(request, b"/hits")     # answers the client through the request

1. Nothing reached a backend (refused, connect timeout): try the next backend.
2. The request may have reached one (reset or EOF after sending, no response
   head within ``PROXY_TIMEOUT``): try again only when it carries an
   ``Idempotency-Key``, which makes a repeat harmless at the backend; otherwise
   answer 502 with ``"outcome": "unknown"``. (``headers.to_backend`` stamps a key
   on keyless requests unless ``PROXY_STAMP_KEYS=0``.)
3. Once a response head arrives nothing is tried again. A body up to
   ``PROXY_BUFFER`` bytes is read whole before anything goes to the client, so
   a backend failing mid-body still gets a clean 502 "outcome unknown"; a
   bigger one streams, and a failure mid-stream cuts the client's connection,
   so a cut body can never pass for a whole one.
4. At most ``PROXY_TRIES`` tries, none starting later than ``PROXY_RETRY_WINDOW``
   after the request arrived, each retry after a random 0..``PROXY_BACKOFF``*2^n s.

Every response carries ``X-Backend`` (the last backend tried), ``X-Proxy-Tries``
and ``X-Request-Id``. With ``PROXY_STICKY=cookie`` the first try goes to the
backend the visitor's cookie pins while it is up, and a response from any other
pins the visitor to it (``proxy.sticky``); retries go on as without.
"""
import asyncio
import logging
import random
import time

from proxy.client import BrokenBody, NotDelivered, PossiblyDelivered
from proxy.headers import request_id, tags, to_backend, to_client
from proxy.sticky import Sticky, without_pin

log = logging.getLogger("proxy.forward")

# Methods whose requests carry a Content-Length even when empty, as clients send them.
BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))


class Forwarder:
    def __init__(self, config, pool, connections, totals):
        self.config, self.pool, self.connections, self.totals = config, pool, connections, totals
        self.loop = asyncio.get_running_loop()
        self.sticky = Sticky(config.sticky_secret, totals) if config.sticky == "cookie" else None

    async def forward(self, request, path):
        config, pool = self.config, self.pool
        deadline = request.started + config.retry_window
        rid = request.rid = request_id(request.given_id)
        pinned_address = pinned = None
        if self.sticky is not None:  # only then are cookies read at all
            request.headers, token = without_pin(request.headers)
            pinned_address = self.sticky.address(token, pool)
            pinned = pool.pinned(pinned_address)
        body = request.body
        sized = body or request.content_length is not None or request.chunked or request.method in BODY_METHODS
        block, key = to_backend(request.headers, request.connection, request.forwarded_for, request.conn.remote,
                                rid, request.key, config.stamp_keys, len(body) if sized else None)
        line = b"%s %s HTTP/1.1\r\n" % (request.method, path)
        head = line + block + b"\r\n" if request.host is not None else None
        head_only = request.method == b"HEAD"
        tried, unknown = [], None
        while len(tried) < config.tries:
            if tried:
                pause = random.uniform(0, config.backoff * 2 ** (len(tried) - 1))
                if time.monotonic() + pause > deadline:
                    break
                await asyncio.sleep(pause)
            backend = pinned if pinned is not None and not tried else pool.pick(avoid=tried)
            if backend is None:
                break
            counters = backend.counters
            if tried:
                counters.retries += 1
                self.totals.retries += 1
            tried.append(backend)
            counters.requests += 1
            counters.in_flight += 1
            try:
                try:
                    # An HTTP/1.0 client may send no Host; a backend gets its own address.
                    response = await self.connections.send(
                        backend, head or line + b"Host: %s\r\n%s\r\n" % (backend.address.encode(), block),
                        body, head_only)
                except (NotDelivered, PossiblyDelivered) as exc:
                    self._failed(backend, exc, rid)
                    if isinstance(exc, PossiblyDelivered):
                        unknown = exc
                        if key is None:
                            break
                    continue
                except BrokenBody as exc:
                    self._failed_mid_body(backend, exc, rid)
                    return self._give_up(request, len(tried), backend, exc, key, rid)
                return await self._relay(request, response, backend, len(tried), rid, pinned_address)
            finally:
                counters.in_flight -= 1
        return self._give_up(request, len(tried), tried[-1] if tried else None, unknown, key, rid)

    def _failed(self, backend, exc, rid):
        backend.counters.failures += 1
        self.totals.failures += 1
        # A slow answer is not a dead backend; a refused or broken connection is.
        if not getattr(exc, "timed_out", False):
            self.pool.failed(backend)
        log.warning("try on %s failed (%s) request_id=%s", backend.address, exc, rid)

    def _give_up(self, request, tries, backend, unknown, key, rid):
        if unknown is not None:
            self.totals.unknown_outcome += 1
            status, body = 502, {"error": f"backend failed after the request was sent ({unknown})",
                                 "outcome": "unknown"}
            if key:
                # A stamped key is news to the client, and its safe way to try again.
                body["idempotency_key"] = key
                body["error"] += "; a retry with this Idempotency-Key is safe"
            else:
                body["error"] += "; send an Idempotency-Key to make a retry safe"
        else:
            status, body = 503, {"error": "no backend accepted the connection" if tries else "no backend available",
                                 "outcome": "not delivered"}
        request.backend, request.tries = backend.address if backend else None, tries
        request.json(status, body, [tags(backend, tries, rid)])

    async def _relay(self, request, response, backend, tries, rid, pinned_address):
        """Pass the backend's response on; from here on there is no retry."""
        request.backend, request.tries = backend.address, tries
        lines = to_client(response.headers, response.connection)
        lines.append(tags(backend, tries, rid))
        if self.sticky is not None:
            lines.append(self.sticky.served(backend, pinned_address))
        if response.body is not None:  # small and sized, or bodiless: head and body leave in one write
            request.respond(response.status, response.reason, lines, response.body)
            return
        request.start(response.status, response.reason, lines, sized=response.content_length is not None)
        while True:
            try:
                chunk = await response.read()
            except BrokenBody as exc:
                self._failed_mid_body(backend, exc, rid)
                # Without the end of the body (last chunk or full Content-Length) the
                # client can tell the response is broken; a clean end would hide that.
                request.abort()
                return
            if not chunk:
                break
            await request.write(chunk)
        request.finish()

    def _failed_mid_body(self, backend, exc, rid):
        backend.counters.failures += 1
        self.totals.failures += 1
        log.warning("backend %s failed mid-response (%s) request_id=%s", backend.address, exc, rid)
