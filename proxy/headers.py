"""Headers on the way through: hop-by-hop ones dropped, forwarding facts added, keys stamped.

Headers stay as the parser gave them, a list of ``(name, value)`` bytes pairs in
the sender's case, and leave as one block of bytes, so a request costs a single
pass over them each way.

    >>> block, key = to_backend([(b"Host", b"example"), (b"Connection", b"keep-alive, X-Drop"), (b"X-Drop", b"1")],
    ...                         connection=(b"keep-alive", b"x-drop"), forwarded_for=b"", remote="10.0.0.9",
    ...                         request_id="r1", key=None, stamp_key=True, body_length=None)
    >>> block.startswith(b"Host: example\\r\\nX-Forwarded-For: 10.0.0.9\\r\\n"), key.startswith("proxy-")
    (True, True)
    >>> b"X-Drop" in block, b"Connection" in block
    (False, False)

A stamped key is ``proxy-<32 hex>``: fresh per incoming request, so every retry
the proxy makes of that request is one exactly-once operation at the backend,
and without a ``:`` so the web process puts it in no run's ledger.
"""
import os
import re

IDEMPOTENCY_KEY = "Idempotency-Key"
REQUEST_ID = "X-Request-Id"
X_BACKEND = "X-Backend"
X_TRIES = "X-Proxy-Tries"

# RFC 9110 7.6.1, plus Proxy-Connection, which old clients still send. Lower case, as compared.
HOP_BY_HOP = frozenset((
    b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
    b"te", b"trailer", b"transfer-encoding", b"upgrade",
))
# The proxy reads the whole request body and sends it with its own framing, and it has
# already answered any Expect itself, so these must not travel on; the forwarding
# headers and the request id it sets itself, replacing the client's.
NOT_FORWARDED = HOP_BY_HOP | {b"content-length", b"expect", b"x-forwarded-for", b"x-forwarded-proto",
                              b"x-request-id"}

# A client's own request id is kept when it is short and plain enough to log safely.
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_id():
    return os.urandom(16).hex()  # what secrets.token_hex does, minus two calls per request


def request_id(given):
    """The client's ``X-Request-Id`` (bytes, or None) when it is sane, else a fresh one."""
    if given:
        text = given.decode("latin-1")
        if CLIENT_REQUEST_ID.fullmatch(text):
            return text
    return new_id()


def connection_tokens(value):
    """The lower-cased names a ``Connection`` header value lists."""
    return tuple(token.strip().lower() for token in value.split(b","))


def kept(headers, connection, dropped):
    """``name: value\\r\\n`` lines of the headers that are neither in ``dropped`` nor listed in ``Connection``."""
    lines = []
    for name, value in headers:
        lower = name.lower()
        if lower in dropped or lower in connection:
            continue
        lines += (name, b": ", value, b"\r\n")
    return lines


def to_backend(headers, connection, forwarded_for, remote, request_id, key, stamp_key, body_length):
    """The request's header block for a backend (Host as sent, no request line), and its Idempotency-Key.

    ``forwarded_for`` is the client's own ``X-Forwarded-For`` chain (b"" when none);
    ``body_length`` None sends no ``Content-Length``.
    """
    lines = kept(headers, connection, NOT_FORWARDED)
    chain = f"{forwarded_for.decode('latin-1')}, {remote}" if forwarded_for else (remote or "unknown")
    extra = f"X-Forwarded-For: {chain}\r\nX-Forwarded-Proto: http\r\nX-Request-Id: {request_id}\r\n"
    if key is None and stamp_key:
        key = f"proxy-{new_id()}"
        extra += f"Idempotency-Key: {key}\r\n"
    if body_length is not None:
        extra += f"Content-Length: {body_length}\r\n"
    lines.append(extra.encode("latin-1"))
    return b"".join(lines), key


def to_client(headers, connection):
    """The backend's response header lines minus hop-by-hop ones; Content-Length stays, the body passes unchanged."""
    return kept(headers, connection, HOP_BY_HOP)


def tags(backend, tries, rid):
    """The proxy's own response headers: where the request went, in how many tries, under which id."""
    where = f"{X_BACKEND}: {backend.address}\r\n" if backend is not None else ""
    return f"{where}{X_TRIES}: {tries}\r\n{REQUEST_ID}: {rid}\r\n".encode("latin-1")
