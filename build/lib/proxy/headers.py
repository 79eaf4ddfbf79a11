"""Headers on the way through: hop-by-hop ones dropped, forwarding facts added, keys stamped.

    >>> upstream = to_backend(CIMultiDict({"Host": "example", "Connection": "keep-alive"}),
    ...                       remote="10.0.0.9", request_id="r1", stamp_key=True)
    >>> upstream["X-Forwarded-For"], upstream["Idempotency-Key"].startswith("proxy-"), "Connection" in upstream
    ('10.0.0.9', True, False)

A stamped key is ``proxy-<32 hex>``: fresh per incoming request, so every retry
the proxy makes of that request is one exactly-once operation at the backend,
and without a ``:`` so the web process puts it in no run's ledger.
"""
import os
import re

from multidict import CIMultiDict, istr

IDEMPOTENCY_KEY = istr("Idempotency-Key")
REQUEST_ID = istr("X-Request-Id")
X_BACKEND = istr("X-Backend")
X_TRIES = istr("X-Proxy-Tries")

# RFC 9110 7.6.1, plus Proxy-Connection, which old clients still send.
HOP_BY_HOP = frozenset(map(istr, (
    "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
    "TE", "Trailer", "Transfer-Encoding", "Upgrade",
)))
# The proxy reads the whole request body and sends it with its own framing, and it has
# already answered any Expect: 100-continue itself, so these two must not travel on.
REQUEST_FRAMING = frozenset(map(istr, ("Content-Length", "Expect")))

# A client's own request id is kept when it is short and plain enough to log safely.
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_id():
    return os.urandom(16).hex()  # what secrets.token_hex does, minus two calls per request


def request_id(headers):
    """The client's ``X-Request-Id`` when it is sane, else a fresh one."""
    given = headers.get(REQUEST_ID, "")
    return given if CLIENT_REQUEST_ID.fullmatch(given) else new_id()


def without(headers, names):
    """A copy without ``names`` and without any header the ``Connection`` header lists."""
    copy = CIMultiDict(headers)  # case-insensitive, so "keep-alive" goes with "Keep-Alive"
    for value in headers.getall("Connection", ()):
        for token in value.split(","):
            copy.popall(token.strip(), None)
    for name in names:
        copy.popall(name, None)
    return copy


def to_backend(headers, remote, request_id, stamp_key):
    upstream = without(headers, HOP_BY_HOP | REQUEST_FRAMING)
    prior = headers.get("X-Forwarded-For")
    upstream["X-Forwarded-For"] = f"{prior}, {remote}" if prior else (remote or "unknown")
    upstream["X-Forwarded-Proto"] = "http"
    upstream[REQUEST_ID] = request_id
    if stamp_key and IDEMPOTENCY_KEY not in upstream:
        upstream[IDEMPOTENCY_KEY] = f"proxy-{new_id()}"
    return upstream


def to_client(headers):
    """The backend's response headers minus hop-by-hop ones; Content-Length stays, the body passes unchanged."""
    return without(headers, HOP_BY_HOP)
