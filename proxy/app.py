"""What the proxy does with a parsed request: answer its own ``/_proxy/`` paths, refuse other hosts, forward the rest.

    handle = create_handler(config, pool, forwarder, totals, discovery=watcher.state)
    server = Server(config, handle, totals)     # proxy.server: parsing and the refusals that need no target

Answered here, never forwarded:

- ``GET /_proxy/metrics``: JSON totals (requests, in-flight, retries, failures,
  responses by class, rolling rate and p50/p95/p99), per backend counters and
  state, and the routable backend set. All of ``/_proxy/`` is the proxy's own.
- an absolute-form target naming anything but the address the client
  connected to, and the asterisk form: 421. It is a reverse proxy, never a relay.
"""
import ipaddress
import time

import httptools

from proxy.request import Refusal

ADMIN_PREFIX = b"/_proxy/"
METRICS_PATH = ADMIN_PREFIX + b"metrics"


def is_own_address(url, sockname):
    """True when a parsed absolute-form target names the ip:port this connection was made to."""
    if url.schema != b"http" or not url.host or sockname is None:
        return False
    try:
        return ipaddress.ip_address(url.host.decode()) == ipaddress.ip_address(sockname[0]) and url.port == sockname[1]
    except ValueError:  # a name, not an address
        return False


def target(request):
    """The path and query to forward: origin-form as sent, or absolute-form naming this proxy."""
    raw = request.target
    if raw.startswith(b"/"):
        return raw
    try:
        url = httptools.parse_url(raw)
    except httptools.HttpParserInvalidURLError:
        url = None
    if url is None or not is_own_address(url, request.conn.sockname):
        raise Refusal(421, f"target {raw[:100].decode('latin-1')!r} is not this server: it is not an open proxy",
                      close=False)
    path = url.path or b"/"
    return path + b"?" + url.query if url.query else path


def metrics(pool, totals, discovery):
    return {"totals": totals.snapshot(), "backends": pool.describe(), "backend_set": pool.addresses(),
            "discovery": discovery()}


def create_handler(config, pool, forwarder, totals, discovery):
    """The coroutine ``proxy.server.Server`` calls with each whole request."""
    def admin(request, path):
        if path.partition(b"?")[0] != METRICS_PATH:
            request.json(404, {"error": f"the proxy answers only {METRICS_PATH.decode()} under {ADMIN_PREFIX.decode()}"})
        elif request.method not in (b"GET", b"HEAD"):
            request.json(405, {"error": f"{METRICS_PATH.decode()} is read-only"}, [b"Allow: GET, HEAD\r\n"])
        else:
            request.json(200, metrics(pool, totals, discovery))

    async def handle(request):
        try:
            path = target(request)
        except Refusal as refusal:
            totals.requests += 1
            totals.refused += 1
            request.json(refusal.status, {"error": str(refusal)}, close=refusal.close)
            totals.finished(refusal.status, time.monotonic() - request.started)
            return
        if path.startswith(ADMIN_PREFIX):
            return admin(request, path)
        totals.requests += 1
        totals.in_flight += 1
        try:
            await forwarder.forward(request, path)
        finally:
            totals.in_flight -= 1
            totals.finished(request.status or 500, time.monotonic() - request.started)

    return handle
