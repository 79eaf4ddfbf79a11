"""The refusals that need no backend: what a request may look like before the proxy forwards it.

    >>> from proxy.config import Config
    >>> config = Config(max_body=1024)
    >>> request_line(b"GET /hits\\r\\nHost: x\\r\\n", 8190)
    (False, b'')
    >>> request_line(b"\\r\\nGET /hits HTTP/1.1\\r\\n", 8190), request_line(b"GET /hi", 8190)
    ((True, b''), (None, b'GET /hi'))
    >>> head_refusal(b"POST", "1.1", host=b"x", content_length=4096, expect=None, config=config)
    Refusal('body over PROXY_MAX_BODY=1024 bytes')

Each is a Refusal (a status and a one-line reason) that ``proxy.server`` answers
as JSON, closing the connection after it:

- what llhttp rejects (malformed request line or headers, bad chunking,
  conflicting ``Content-Length``/``Transfer-Encoding``), a request line without
  an HTTP version (at once, not when the headers would end), and an HTTP/1.1
  request without exactly one ``Host``: 400;
- a request line or header over ``PROXY_MAX_HEADER_LINE`` bytes, or more than
  ``PROXY_MAX_HEADERS`` headers: 431;
- a body over ``PROXY_MAX_BODY``, declared or as it arrives: 413;
- a request not in whole within ``PROXY_CLIENT_TIMEOUT`` of the connection's
  start or the previous response: 408 (an idle keep-alive connection is just closed);
- ``CONNECT``: 405 (a reverse proxy, never a tunnel);
- an ``Expect`` other than ``100-continue``: 417. ``100-continue`` is answered
  by the server, before the body, unless the declared body is already too large.
"""
from proxy.request import Refusal

NO_VERSION = "malformed request: request line without an HTTP version"


def request_line(buffered, max_line):
    """``(has_version, carry)`` for the bytes a connection has before its request line ends.

    ``has_version`` is None while the line has not ended (``carry`` is what to
    keep, bounded: an overlong line is llhttp's to refuse); else whether the line
    names ``HTTP/x.y``. llhttp would take ``GET /hits`` as HTTP/0.9 and wait for
    headers that never come. Empty lines before a request are allowed.
    """
    start = 0
    while True:
        end = buffered.find(b"\n", start)
        if end < 0:
            return None, buffered[start:start + max_line + 2]
        line = buffered[start:end]
        if line == b"" or line == b"\r":
            start = end + 1
            continue
        return line.rstrip(b"\r").rpartition(b" ")[2].startswith(b"HTTP/"), b""


def line_refusal(length, config):
    """A request target over the line limit, as it arrives."""
    if length > config.max_header_line:
        return Refusal(431, f"request line over PROXY_MAX_HEADER_LINE={config.max_header_line} bytes")
    return None


def header_refusal(count, name, value, config):
    """The ``count``-th header, too many or too long."""
    if count > config.max_headers:
        return Refusal(431, f"more than PROXY_MAX_HEADERS={config.max_headers} headers")
    if len(name) + len(value) + 2 > config.max_header_line:
        return Refusal(431, f"header line over PROXY_MAX_HEADER_LINE={config.max_header_line} bytes")
    return None


def head_too_large(size, config):
    """llhttp holds a header until it ends; this bounds what it may hold."""
    if size > config.max_header_line * (config.max_headers + 2):
        return Refusal(431, "request head too large")
    return None


def head_refusal(method, version, host, content_length, expect, config):
    """A whole head the proxy must not forward, or None."""
    if version == "0.9":
        return Refusal(400, NO_VERSION)
    if method == b"CONNECT":
        return Refusal(405, "CONNECT refused: this is a reverse proxy, not a tunnel")
    if host is None and version == "1.1":
        return Refusal(400, "HTTP/1.1 request without a Host header")
    if content_length is not None and content_length > config.max_body:
        return body_refusal(config)
    if expect is not None and expect.lower() != b"100-continue":
        return Refusal(417, f"unsupported Expect: {expect[:100].decode('latin-1')!r}")
    return None


def body_refusal(config):
    return Refusal(413, f"body over PROXY_MAX_BODY={config.max_body} bytes")
