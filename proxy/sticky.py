"""PROXY_STICKY=cookie: each visitor pinned to one backend instance by an opaque cookie of the proxy's own.

    sticky = Sticky(secret=b"", totals=totals)       # b"": a random key of this process's own
    request.headers, token = without_pin(request.headers)
    address = sticky.address(token, pool)            # the address the cookie names, or None
    lines.append(sticky.served(backend, address))    # b"", or a Set-Cookie pinning the backend that served

    >>> without_pin([(b"Host", b"x"), (b"Cookie", b"session=abc; factor6_backend=f00d"),
    ...              (b"cookie", b"factor6_backend=1")])
    ([(b'Host', b'x'), (b'Cookie', b'session=abc')], b'f00d')

The value is an HMAC of the backend's address under the key, 32 hex digits: it
names no address, and only the address of a backend in the pool can match it,
so a forged or stale value reaches nothing the proxy would not route to anyway.
It is ignored (normal balancing) and the response pins afresh. A pinned backend
is used while it is up; down, draining, gone or failing (the retry goes on as
ever), the request is balanced as usual and re-pinned to whichever backend
answers. Proxies given the same ``PROXY_STICKY_SECRET`` honour each other's cookies.

A pin names an instance, not a worker: gunicorn deals a pinned visitor's
requests over that instance's workers.
"""
import hashlib
import hmac
import os

COOKIE_NAME = b"factor6_backend"
COOKIE_ATTRIBUTES = "Path=/; HttpOnly; SameSite=Lax"


def without_pin(headers):
    """``headers`` minus the proxy's cookie (a Cookie header left empty goes too), and its first value or None.

    Every other cookie passes on as sent, in order.
    """
    token, kept = None, []
    for name, value in headers:
        if COOKIE_NAME not in value or name.lower() != b"cookie":
            kept.append((name, value))
            continue
        others = []
        for pair in value.split(b";"):
            pair = pair.strip()
            key, _, pin = pair.partition(b"=")
            if key.strip() == COOKIE_NAME:
                token = token or pin.strip()
            elif pair:
                others.append(pair)
        if others:
            kept.append((name, b"; ".join(others)))
    return kept, token


class Sticky:
    """The key, the tokens of the addresses seen so far, and the sticky counters in ``totals``."""

    def __init__(self, secret, totals):
        # No secret given: one of this process's own; a restarted proxy then re-pins every visitor once.
        self.key = secret or os.urandom(32)
        self.totals = totals
        self._tokens, self._addresses = {}, {}  # address -> token, token -> address; only the pool's addresses

    def token(self, address):
        token = self._tokens.get(address)
        if token is None:
            token = hmac.new(self.key, address.encode(), hashlib.sha256).hexdigest()[:32].encode()
            self._tokens[address], self._addresses[token] = token, address
        return token

    def address(self, token, pool):
        """The pool's backend address ``token`` names, or None (no cookie, or one the pool cannot match)."""
        if not token:
            return None
        address = self._addresses.get(token)
        if address is None:
            for known in pool.addresses():  # a cookie from before this process, or from another proxy
                self.token(known)
            address = self._addresses.get(token)
        return address

    def served(self, backend, address):
        """What the response of ``backend`` needs to pin its visitor: b"" when ``address`` already names it."""
        totals = self.totals
        if backend.address == address:
            totals.sticky_hits += 1
            return b""
        if address is None:
            totals.sticky_pins += 1
        else:
            totals.sticky_repins += 1
        return b"Set-Cookie: %s=%s; %s\r\n" % (COOKIE_NAME, self.token(backend.address), COOKIE_ATTRIBUTES.encode())
