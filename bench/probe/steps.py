"""One request of a probe, as pure functions: fill in its placeholders, build it, read values from its answer, judge it.

    >>> import random
    >>> from bench.probe.spec import Step
    >>> write = Step("POST", "/posts", json={"title": "{token}"}, expect=(200, 201), capture=(("id", "json:id"),))
    >>> bindings = {"token": "tok123", "visitor": "visitor-1"}
    >>> request_for(write, bindings, random.Random(1))
    {'method': 'POST', 'path': '/posts', 'headers': {}, 'allow_redirects': False, 'json': {'title': 'tok123'}}
    >>> answer = 201, {"Content-Type": "application/json"}, b'{"id": 7, "title": "tok123"}'
    >>> judge(write, *answer, bindings) is None, captured(write, *answer)
    (True, {'id': '7'})
    >>> read = Step("GET", "/posts/{id}", contains="{token}")
    >>> request_for(read, {**bindings, "id": "7"}, random.Random(1))["path"]
    '/posts/7'
    >>> judge(read, 404, {}, b'{"error": "no such post"}', bindings)
    'status 404 not in [200]'

A placeholder is ``{name}``: ``{token}`` (fresh per write), ``{visitor}`` (stable per visitor),
``{written_sha256}`` (the SHA-256 of the last ``file`` body sent) or a name captured by an earlier
step. Braces around quoted text or nothing (JSON) are text. Captured values are strings, inserted as
they are.

A capture source names a value in an answer: ``json:a.b.0`` (a dotted path into the JSON body; a
number indexes a list), ``header:Location``, ``body`` (the whole body as text), ``sha256`` (of the
body) and ``status``. JSON strings are captured as they are, other JSON values as compact JSON
(``7``, ``true``, ``["a"]``); a missing value, or JSON ``null``, is None.
"""
import hashlib
import json
import re
from urllib.parse import urlsplit, urlunsplit

TOKEN, VISITOR, WRITTEN_SHA256 = "token", "visitor", "written_sha256"
RESERVED = (TOKEN, VISITOR, WRITTEN_SHA256)  # names factor6 binds; no capture may take them
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # an HTTP header name (RFC 9110's token)
PART = re.compile(r"\{([^{}]*)\}")  # braces around text: a placeholder when the text is a name
SOURCES = ("json:<dotted.path>", "header:<Name>", "body", "sha256", "status")
SHORT = 60  # characters of a value quoted in a reason


def parts(template):
    """One string as (text, name) pairs: literal text, then the placeholder after it (None at the end).

    Braces around a name are a placeholder; braces around quoted text or nothing are text, so JSON
    (``{"ok": true}``, ``{}``, nested objects) needs no escapes. Anything else in braces is a bad placeholder.

    >>> parts('/p/{id}?q=1')
    [('/p/', 'id'), ('?q=1', None)]
    >>> parts('{"user": {"name": "{visitor}"}, "tags": {}}')
    [('{"user": {"name": "', 'visitor'), ('"}, "tags": {}}', None)]
    """
    pairs, at = [], 0
    for match in PART.finditer(template):
        inside = match[1]
        if NAME.fullmatch(inside):
            pairs.append((template[at:match.start()], inside))
            at = match.end()
        elif inside and '"' not in inside and "'" not in inside:
            raise ValueError(f"bad placeholder {match[0]!r}: a placeholder is {{name}} (letters, digits, _)")
    return pairs + [(template[at:], None)]


def placeholders(template):
    """The names ``template`` uses (a string, or the strings inside nested JSON or form values), in order.

    >>> placeholders("/posts/{id}?by={visitor}")
    ('id', 'visitor')
    >>> placeholders({"user": {"name": "{visitor}", "tags": ["{token}", 3]}, "{}": True, "x": '{"a": {"b": 1}}'})
    ('visitor', 'token')
    >>> placeholders("/posts/{post id}")
    Traceback (most recent call last):
    ...
    ValueError: bad placeholder '{post id}': a placeholder is {name} (letters, digits, _)
    """
    if isinstance(template, str):
        return tuple(name for _, name in parts(template) if name)
    if isinstance(template, dict):
        return tuple(name for key, value in template.items() for name in placeholders(key) + placeholders(value))
    if isinstance(template, (list, tuple)):
        return tuple(name for item in template for name in placeholders(item))
    return ()


def render(template, bindings):
    """``template`` with each ``{name}`` replaced by ``bindings[name]``, also inside nested dicts and lists.

    >>> render({"title": "{token}", "tags": ["by {visitor}", 7], "note": '{"a": {}}'}, {"token": "t1", "visitor": "ana"})
    {'title': 't1', 'tags': ['by ana', 7], 'note': '{"a": {}}'}
    >>> render("/posts/{id}", {})
    Traceback (most recent call last):
    ...
    KeyError: 'id'
    """
    if isinstance(template, str):
        return "".join(text + (value_of(name, bindings) if name else "") for text, name in parts(template))
    if isinstance(template, dict):
        return {render(key, bindings): render(value, bindings) for key, value in template.items()}
    if isinstance(template, (list, tuple)):
        return [render(item, bindings) for item in template]
    return template


def value_of(name, bindings):
    if bindings.get(name) is None:
        raise KeyError(name)
    return str(bindings[name])


def check_source(source):
    """``source`` if it names a value in an answer, else ValueError saying what a source is.

    >>> check_source("json:items.0.id"), check_source("header:Location")
    ('json:items.0.id', 'header:Location')
    >>> check_source("json:")
    Traceback (most recent call last):
    ...
    ValueError: capture source 'json:' names nothing: a source is json:<dotted.path>, header:<Name>, body, sha256 or status
    """
    kind, colon, rest = source.partition(":") if isinstance(source, str) else ("", "", "")
    if source in ("body", "sha256", "status"):
        return source
    if colon and kind == "json" and rest and all(rest.split(".")):
        return source
    if colon and kind == "header" and HEADER.fullmatch(rest):
        return source
    raise ValueError(f"capture source {source!r} names nothing: a source is {', '.join(SOURCES[:-1])} or {SOURCES[-1]}")


def capture(source, status, headers, body):
    """The value ``source`` names in an answer (``body`` as bytes or text), as a string; None when absent.

    >>> body = b'{"id": 7, "user": {"name": "ana", "tags": ["a", "b"]}, "gone": null}'
    >>> [capture(s, 201, {"location": "/posts/7"}, body) for s in ("json:id", "json:user.tags.1", "json:user.tags",
    ...  "json:gone", "json:nope", "header:Location", "status")]
    ['7', 'b', '["a","b"]', None, None, '/posts/7', '201']
    >>> capture("sha256", 200, {}, b"abc")[:16], capture("body", 200, {}, b"caf\\xc3\\xa9")
    ('ba7816bf8f01cfea', 'café')
    """
    check_source(source)
    if source == "body":
        return text(body)
    if source == "sha256":
        return hashlib.sha256(raw(body)).hexdigest()
    if source == "status":
        return str(status)
    kind, _, rest = source.partition(":")
    if kind == "header":
        pairs = headers.items() if hasattr(headers, "items") else headers
        return next((str(value) for name, value in pairs if name.lower() == rest.lower()), None)
    try:
        value = json.loads(raw(body))
    except ValueError:
        return None
    for segment in rest.split("."):
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", segment) and -len(value) <= int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return as_text(value)


def as_text(value):
    """A JSON or TOML value as the string a capture of it gives: strings as they are, the rest as compact JSON.

    >>> as_text("7"), as_text(7), as_text(True), as_text(None), as_text({"a": [1]})
    ('7', '7', 'true', None, '{"a":[1]}')
    """
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def captured(step, status, headers, body):
    """{name: value} for each of ``step``'s captures in its answer (None where the answer lacks it)."""
    return {name: capture(source, status, headers, body) for name, source in step.capture}


def judge(step, status, headers, body, bindings):
    """None when the answer is what ``step`` expects, else a short reason.

    ``bindings`` fill the expectations' placeholders. Every capture of the step must find its value,
    so a later step never runs with a hole.

    >>> from bench.probe.spec import Step
    >>> who = Step("GET", "/me", expect=(200,), equals=(("json:user", "{visitor}"),), contains="{token}")
    >>> judge(who, 200, {}, b'{"user": "bob", "note": "tok123"}', {"visitor": "alice", "token": "tok123"})
    "json:user is 'bob', not 'alice'"
    >>> judge(who, 200, {}, b'{"user": "alice"}', {"visitor": "alice", "token": "tok123"})
    "body lacks 'tok123'"
    >>> judge(Step("GET", "/f", sha256="{written_sha256}"), 200, {}, b"xyz", {"written_sha256": "00"})
    'sha256 differs'
    >>> judge(Step("POST", "/p", capture=(("id", "json:id"),)), 200, {}, b"<html>", {})
    'no json:id in the answer (for id)'
    """
    if status not in step.expect:
        return f"status {status} not in [{', '.join(map(str, step.expect))}]"
    for name, source in step.capture:
        if capture(source, status, headers, body) is None:
            return f"no {source} in the answer (for {name})"
    if step.contains is not None and (wanted := render(step.contains, bindings)) not in text(body):
        return f"body lacks {short(wanted)!r}"
    for source, template in step.equals:
        wanted, found = render(template, bindings), capture(source, status, headers, body)
        if found is None:
            return f"no {source} in the answer (wanted {short(wanted)!r})"
        if not same(found, wanted):
            return f"{source} is {short(found)!r}, not {short(wanted)!r}"
    if step.sha256 is not None and hashlib.sha256(raw(body)).hexdigest() != render(step.sha256, bindings).lower():
        return "sha256 differs"
    return None


def same(found, wanted):
    """Whether a captured value is the one wanted: the same text, or the same number (``1`` and ``1.0``).

    >>> same("7", "7"), same("1", "1.0"), same("1e3", "1000"), same("true", "1"), same("x", "y")
    (True, True, True, False, False)
    """
    if found == wanted:
        return True
    try:
        numbers = json.loads(found), json.loads(wanted)
    except ValueError:
        return False
    return all(type(number) in (int, float) for number in numbers) and numbers[0] == numbers[1]


def request_for(step, bindings, rng):
    """The keyword arguments of ``requests.request`` for ``step``, but ``path`` in place of ``url``.

    The caller sends it to the instance it chose: ``requests.request(url=base + kw.pop("path"), **kw)``.
    An absolute URL (a captured ``Location``, say) keeps only its path and query, so factor6, not the
    app, chooses who answers. A ``file`` body is ``file_size`` bytes from ``rng``; their SHA-256 goes
    into ``bindings`` as ``written_sha256``.

    >>> import random
    >>> from bench.probe.spec import Step
    >>> bindings = {}
    >>> kw = request_for(Step("PUT", "/files/a", file_size=4, file_field="doc"), bindings, random.Random(0))
    >>> kw["files"]["doc"][1], bindings["written_sha256"][:12]
    (b'\\xcd\\x07,\\xd8', '2dbfcfe6524f')
    >>> [request_for(Step("GET", "{next}"), {"next": next}, rng=None)["path"]
    ...  for next in ("http://127.0.0.1:5001/posts/7?x=1", "posts/7", "/posts/7#top", "")]
    ['/posts/7?x=1', '/posts/7', '/posts/7', '/']
    """
    path = urlsplit(render(step.path, bindings))
    kwargs = {"method": step.method, "path": urlunsplit(("", "", "/" + path.path.lstrip("/"), path.query, "")),
              "headers": {render(name, bindings): render(value, bindings) for name, value in step.headers},
              "allow_redirects": False}
    if step.json is not None:
        kwargs["json"] = render(step.json, bindings)
    elif step.form is not None:
        kwargs["data"] = render(step.form, bindings)
    elif step.file_size is not None:
        data = rng.randbytes(step.file_size)
        bindings[WRITTEN_SHA256] = hashlib.sha256(data).hexdigest()
        kwargs["files"] = {step.file_field: ("upload.bin", data, "application/octet-stream")}
    return kwargs


def fresh_token(rng):
    """A ``{token}``: 16 lowercase letters and digits, safe in a path, a header, a JSON string or a form.

    >>> import random
    >>> fresh_token(random.Random(0))
    'ty0cq65zt4wn6isi'
    """
    return "t" + letters(rng, 15)


def fresh_visitor(rng):
    """A ``{visitor}``: ``visitor-`` and 8 letters and digits, so no two visitors (of any probe or run) share one.

    >>> import random
    >>> fresh_visitor(random.Random(0))
    'visitor-y0cq65zt'
    """
    return "visitor-" + letters(rng, 8)


def letters(rng, count):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(count))


def raw(body):
    return body.encode() if isinstance(body, str) else bytes(body or b"")


def text(body):
    return body if isinstance(body, str) else raw(body).decode("utf-8", errors="replace")


def short(value):
    return value if len(value) <= SHORT else value[:SHORT - 1] + "…"
