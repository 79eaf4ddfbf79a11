"""The front door: an aiohttp low-level server that refuses bad input itself and forwards the rest.

    server = create_server(config, pool, forwarder, totals)
    runner = web.ServerRunner(server)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()

Answered here, never forwarded:

- ``GET /_proxy/metrics``: JSON totals (requests, in-flight, retries, failures,
  responses by class, rolling rate and p50/p95/p99), per backend counters and
  state, and the routable backend set. All of ``/_proxy/`` is the proxy's own.
- ``CONNECT``: 405, and an absolute-form target naming anything but the
  address the client connected to: 421. It is a reverse proxy, never a tunnel.
- a body over ``PROXY_MAX_BODY``: 413; a body not sent within
  ``PROXY_CLIENT_TIMEOUT``: 408; a broken chunked body: 400; an ``Expect``
  other than ``100-continue``: 417. Bodies are read whole before the first
  try, so a retry can send them again and a slow sender never holds a backend.
- what aiohttp's parser rejects: malformed request line or headers and
  conflicting ``Content-Length``/``Transfer-Encoding`` get 400; a request line
  or header over ``PROXY_MAX_HEADER_LINE``, or more than ``PROXY_MAX_HEADERS``
  headers, get 431 (see ``Protocol``). Headers that never finish arriving
  are cut off after ``PROXY_CLIENT_TIMEOUT`` by aiohttp's keep-alive timer,
  which runs from the connection's start until a whole request is in.
"""
import asyncio
import ipaddress
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from yarl import URL

from proxy.accesslog import AccessLog

ADMIN_PREFIX = "/_proxy/"
METRICS_PATH = ADMIN_PREFIX + "metrics"


def error(status, message, close=False):
    response = web.json_response({"error": message}, status=status)
    if close:  # the rest of the request is unread, so the connection cannot carry another one
        response.force_close()
    return response


class Refusal(Exception):
    """A request the proxy answers itself, with a 4xx, instead of forwarding it."""

    def __init__(self, status, message, close=False):
        super().__init__(message)
        self.status, self.close = status, close

    def response(self):
        return error(self.status, str(self), self.close)


def is_own_address(url, sockname):
    """True when an absolute-form target names the ip:port this connection was made to."""
    if url.scheme != "http" or not url.host or sockname is None:
        return False
    try:
        return ipaddress.ip_address(url.host) == ipaddress.ip_address(sockname[0]) and url.port == sockname[1]
    except ValueError:  # a name, not an address
        return False


def target(request):
    """The path and query to forward: origin-form as sent, or absolute-form naming this proxy."""
    if request.method == "CONNECT":
        # Closed after the answer: the client may already be sending tunnel bytes.
        raise Refusal(405, "CONNECT refused: this is a reverse proxy, not a tunnel", close=True)
    raw = request.raw_path
    if raw.startswith("/"):
        return raw
    try:
        url = URL(raw, encoded=True)
    except ValueError:
        url = None
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if url is None or not url.absolute or not is_own_address(url, sockname):
        raise Refusal(421, f"target {raw[:100]!r} is not this server: it is not an open proxy")
    return url.raw_path_qs


async def answer_expect(request):
    """What aiohttp's router does for ``Expect``, which its low-level server leaves to us."""
    expect = request.headers.get("Expect")
    if expect is None or request.version < (1, 1):
        return
    if expect.lower() != "100-continue":
        raise Refusal(417, f"unsupported Expect: {expect[:100]!r}", close=True)
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # an interim response: the real one has not started


def too_large(config):
    return Refusal(413, f"body over PROXY_MAX_BODY={config.max_body} bytes", close=True)


async def read_body(request, config):
    """The whole body, read before the first try so that a retry can send it again."""
    if request.content_length is not None and request.content_length > config.max_body:
        raise too_large(config)
    if not request.body_exists:
        return b""
    await answer_expect(request)
    try:
        async with asyncio.timeout(config.client_timeout):
            return await request.read()
    except TimeoutError:
        raise Refusal(408, f"body not received within PROXY_CLIENT_TIMEOUT={config.client_timeout}s",
                      close=True) from None
    except web.HTTPRequestEntityTooLarge:
        raise too_large(config) from None
    except web.RequestPayloadError as exc:
        raise Refusal(400, f"malformed body: {exc}", close=True) from None


def metrics(pool, totals):
    return {"totals": totals.snapshot(), "backends": pool.describe(), "backend_set": pool.addresses()}


class Protocol(web.RequestHandler):
    """aiohttp's per-connection handler, but answering oversized headers 431 and parse errors in JSON.

    aiohttp answers every parse error 400 and has no setting for it, hence this override.
    """

    def handle_error(self, request, status=500, exc=None, message=None):
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong) or exc.message.startswith("Too many headers"):
            status = 431
        return error(status, f"{status} {HTTPStatus(status).phrase}: {exc.message}", close=True)


class Server(web.Server):
    def __call__(self):
        return Protocol(self, loop=self._loop, **self._kwargs)


def create_server(config, pool, forwarder, totals, access_log=None):
    """``access_log``: an ``accesslog.Lines`` to get a line per request, or None."""
    loop = asyncio.get_running_loop()

    async def handle(request):
        if request.path.startswith(ADMIN_PREFIX):
            return admin(request)
        started = loop.time()
        totals.requests += 1
        totals.in_flight += 1
        status = 500
        try:
            response = await forward_or_refuse(request)
            status = response.status
            return response
        finally:
            totals.in_flight -= 1
            totals.finished(status, loop.time() - started)

    def admin(request):
        if request.path != METRICS_PATH:
            return error(404, f"the proxy answers only {METRICS_PATH} under {ADMIN_PREFIX}")
        if request.method not in ("GET", "HEAD"):
            response = error(405, f"{METRICS_PATH} is read-only")
            response.headers["Allow"] = "GET, HEAD"
            return response
        return web.json_response(metrics(pool, totals))

    async def forward_or_refuse(request):
        try:
            path = target(request)
            body = await read_body(request, config)
        except Refusal as refusal:
            totals.refused += 1
            return refusal.response()
        return await forwarder.forward(request, path, body)

    def make_request(message, payload, protocol, writer, task):
        return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=config.max_body)

    return Server(
        handle,
        request_factory=make_request,
        loop=loop,
        # Parser limits; anything over them is answered 431 by Protocol.
        max_line_size=config.max_header_line,
        max_field_size=config.max_header_line,
        max_headers=config.max_headers,
        # Bodies pass through as sent; a proxy must not inflate them.
        auto_decompress=False,
        keepalive_timeout=config.client_timeout,
        access_log_class=AccessLog,
        access_log=access_log,
    )
