"""The retry policy: which failed tries may be made again, where, and how often.

    forwarder = Forwarder(config, pool, session, totals)
    response = await forwarder.forward(request, "/hits", body)   # sent to the client when it returns

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
and ``X-Request-Id``.
"""
import asyncio
import logging
import random

import aiohttp
from aiohttp import web
from yarl import URL

from proxy.client import NotDelivered, PossiblyDelivered
from proxy.headers import IDEMPOTENCY_KEY, REQUEST_ID, X_BACKEND, X_TRIES, request_id, to_backend, to_client

log = logging.getLogger("proxy.forward")


def tag(headers, backend, tries, rid):
    if backend is not None:
        headers[X_BACKEND] = backend.address
    headers[X_TRIES] = str(tries)
    headers[REQUEST_ID] = rid


class Forwarder:
    def __init__(self, config, pool, session, totals):
        self.config, self.pool, self.session, self.totals = config, pool, session, totals

    async def forward(self, request, path, body):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.retry_window
        rid = request_id(request.headers)
        headers = to_backend(request.headers, request.remote, rid, self.config.stamp_keys)
        key = headers.get(IDEMPOTENCY_KEY)
        tried, unknown = [], None
        while len(tried) < self.config.tries:
            if tried:
                pause = random.uniform(0, self.config.backoff * 2 ** (len(tried) - 1))
                if loop.time() + pause > deadline:
                    break
                await asyncio.sleep(pause)
            backend = self.pool.pick(avoid=tried)
            if backend is None:
                break
            if tried:
                backend.counters.retries += 1
                self.totals.retries += 1
            tried.append(backend)
            backend.counters.requests += 1
            backend.counters.in_flight += 1
            try:
                upstream = await self.session.request(
                    request.method, URL(backend.url + path, encoded=True), headers=headers,
                    data=body or None, allow_redirects=False)
            except (NotDelivered, PossiblyDelivered) as exc:
                self._failed(backend, exc, rid)
                if isinstance(exc, PossiblyDelivered):
                    unknown = exc
                    if key is None:
                        break
            else:
                return await self._relay(request, upstream, backend, len(tried), rid, key)
            finally:
                backend.counters.in_flight -= 1
        return self._give_up(len(tried), tried[-1] if tried else None, unknown, key, rid)

    def _failed(self, backend, exc, rid):
        backend.counters.failures += 1
        self.totals.failures += 1
        # A slow answer is not a dead backend; a refused or broken connection is.
        if not isinstance(exc.__cause__, aiohttp.SocketTimeoutError):
            self.pool.failed(backend)
        log.warning("try on %s failed (%s) request_id=%s", backend.address, exc, rid)

    def _give_up(self, tries, backend, unknown, key, rid):
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
        response = web.json_response(body, status=status)
        tag(response.headers, backend, tries, rid)
        return response

    async def _relay(self, request, upstream, backend, tries, rid, key):
        """Pass the backend's response on; from here on there is no retry."""
        headers = to_client(upstream.headers)
        tag(headers, backend, tries, rid)
        async with upstream:  # back to the pool when the body was read to its end, else closed
            if upstream.content_length is not None and upstream.content_length <= self.config.buffer:
                # Small and sized: read it whole, so head and body leave in one write.
                try:
                    body = await upstream.read()
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    self._failed_mid_body(backend, exc, rid)
                    return self._give_up(tries, backend, exc, key, rid)
                return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
            await response.prepare(request)
            while True:
                try:
                    chunk = await upstream.content.readany()
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    self._failed_mid_body(backend, exc, rid)
                    # Without the end of the body (last chunk or full Content-Length) the
                    # client can tell the response is broken; write_eof would hide that.
                    if request.transport is not None:
                        request.transport.close()
                    return response
                if not chunk:
                    break
                await response.write(chunk)
        await response.write_eof()
        return response

    def _failed_mid_body(self, backend, exc, rid):
        backend.counters.failures += 1
        self.totals.failures += 1
        log.warning("backend %s failed mid-response (%s) request_id=%s", backend.address, exc, rid)
