"""One request of the probe and its answer, as a person would read it and reproduce it with curl.

    exchange, response = send(session, "web.1", "http://127.0.0.1:5101", steps.request_for(write, bindings, rng))
    exchange.line()   # 'POST /posts via web.1 -> 201 {"id": 7} at 12:00:03.210'
    exchange.curl()   # "curl -i -X POST 'http://127.0.0.1:5101/posts' -H 'Content-Type: application/json' ..."

    >>> Exchange("GET", "/posts/7", "web.2", "http://127.0.0.1:5102/posts/7", 404, "not found", 0.0).line()[:36]
    'GET /posts/7 via web.2 -> 404 not fo'

Redirects are not followed: a 3xx is an answer like any other. A request
that got no answer (refused, reset, timed out) has ``status`` None and
``error`` says why; it is never judged, only tried again elsewhere.
"""
from __future__ import annotations

import re
import shlex
import time
from dataclasses import asdict, dataclass, field

import requests

from common.clock import clock

REQUEST_TIMEOUT = 10  # seconds an instance may take to answer one request
SHOWN_BODY = 120  # characters of a body shown in a line of evidence
KEPT_BODY = 4096  # characters of a body kept for judging captures and showing
BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")  # what text never holds: control characters, undecodable bytes
TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)


@dataclass
class Exchange:
    method: str
    path: str
    instance: str  # who answered: an instance's name, or "proxy -> web.2"
    url: str
    status: int | None
    body: str
    time: float  # when the request was sent (time.time())
    error: str = ""
    request_headers: dict = field(default_factory=dict)
    request_body: str = ""  # as sent, when it is short text; else a note of its size
    headers: dict = field(default_factory=dict)
    elapsed_ms: float = 0.0
    uploads: dict = field(default_factory=dict)  # multipart file fields sent: {field: bytes}

    def line(self):
        answer = f"{self.status} {excerpt(self.body)}".strip() if self.status else f"no answer ({self.error})"
        return f"{self.method} {self.path} via {self.instance} -> {' '.join(answer.split())} at {clock(self.time)}"

    def curl(self):
        parts = ["curl", "-i", "-X", self.method, self.url]
        for name, value in self.request_headers.items():
            if not (self.uploads and name.lower() == "content-type"):  # curl -F writes its own boundary
                parts += ["-H", f"{name}: {value}"]
        made = []
        for name, size in self.uploads.items():  # a file of the same size stands for the one sent
            made.append(f"head -c {size} /dev/urandom >{shlex.quote(name + '.bin')} && ")
            parts += ["-F", f"{name}=@{name}.bin"]
        if self.request_body and not self.uploads:
            parts += ["--data-binary", self.request_body]
        return "".join(made) + " ".join(shlex.quote(part) for part in parts)

    def to_dict(self):
        return asdict(self)


def excerpt(body):
    """The start of a body, an HTML page by its title, binary bytes by their count.

    >>> excerpt("<!doctype html><html><title>404 Not Found</title><h1>Not Found</h1>")
    'html: 404 Not Found'
    >>> excerpt(chr(0) + chr(0xfffd) + "zz")
    '(4 characters of binary)'
    """
    if not body.isprintable() and BINARY.search(body):
        return f"({len(body)} characters of binary)"
    title = TITLE.search(body) if body.lstrip()[:1] == "<" else None
    return f"html: {' '.join(title.group(1).split())}" if title else body[:SHOWN_BODY]


def shown_body(prepared):
    body = prepared.body
    if body is None:
        return ""
    if isinstance(body, bytes):
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return f"@body-of-{len(body)}-bytes"
        body = text
    return body if len(body) <= KEPT_BODY else f"@body-of-{len(body)}-bytes"


def send(session, instance, base, request, timeout=REQUEST_TIMEOUT):
    """Make ``request`` (bench.probe.steps.request_for's: requests' keywords, ``path`` for ``url``) on ``base``
    with the visitor's session: an Exchange, and the Response (None when there was no answer)."""
    request = {**request, "allow_redirects": False}
    path = request.pop("path")
    method = request.pop("method")
    sent = time.time()
    try:
        response = session.request(method, base + path, timeout=timeout, **request)
    except requests.RequestException as exc:
        return Exchange(method, path, instance, base + path, None, "", sent, error=type(exc).__name__), None
    prepared = response.request
    kept = {name: value for name, value in prepared.headers.items()
            if name.lower() in ("content-type", "cookie") or name in request.get("headers", {})}
    exchange = Exchange(method, path, instance, base + path, response.status_code, response.text[:KEPT_BODY], sent,
                        request_headers=kept, request_body=shown_body(prepared), headers=dict(response.headers),
                        elapsed_ms=response.elapsed.total_seconds() * 1000,
                        uploads={name: len(file[1]) for name, file in request.get("files", {}).items()})
    return exchange, response
