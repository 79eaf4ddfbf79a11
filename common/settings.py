"""The settings readers every factor6 process type shares, and where each finds its Redis.

Every numeric setting (web.config, web/gunicorn_conf.py, scaler.config, backing.config, proxy.config) is read by
``number``; a bad value is one line that names the variable:

    >>> number({"WEB_WORKERS": " 3 "}, "WEB_WORKERS", 2), number({"WEB_WORKERS": ""}, "WEB_WORKERS", 2)
    (3, 2)
    >>> number({"WEB_WORKERS": "two"}, "WEB_WORKERS", 2, least=1)
    Traceback (most recent call last):
    ...
    ValueError: WEB_WORKERS must be a whole number, not 'two'
    >>> number({"REDIS_TIMEOUT": "0"}, "REDIS_TIMEOUT", 1.5, least=0.001)
    Traceback (most recent call last):
    ...
    ValueError: REDIS_TIMEOUT must be at least 0.001, not '0'

``REDIS_URL`` wins; without it the seed's ``HOST_REDIS``/``PORT_REDIS`` are honoured:

    >>> redis_url({"HOST_REDIS": "10.0.0.7", "PORT_REDIS": "6390"})
    'redis://10.0.0.7:6390/0'

A replicated backing service is reached through Sentinel (common/redis_client.py):

    >>> sentinels({"REDIS_SENTINELS": "127.0.0.1:26379, 127.0.0.1:26380"})
    Sentinels(addresses=(('127.0.0.1', 26379), ('127.0.0.1', 26380)), master='factor6')
"""
import errno
import re
import socket
import uuid
from dataclasses import dataclass

KINDS = {int: "a whole number", float: "a number"}
FORMATION_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
WEB_WORKERS = 2  # gunicorn workers per web instance when WEB_WORKERS is unset (web/gunicorn_conf.py)


def number(env, variable, default, least=0, kind=None):
    """``env[variable]`` as a number of ``kind`` (the default's type) and at least ``least``; ``default`` when
    unset or blank. Anything else is a ValueError in one line that names the variable."""
    kind = kind or type(default)
    text = env.get(variable, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{variable} must be {KINDS[kind]}, not {text!r}") from None
    if not value >= least:  # not >=: NaN is no number of seconds either
        raise ValueError(f"{variable} must be at least {least}, not {text!r}")
    return value


def numbers(env, fields):
    """{field: value} for each ``field: (variable, kind, least)`` whose variable is set; the rest keep their
    defaults (a dataclass's)."""
    values = {field: number(env, variable, None, least, kind) for field, (variable, kind, least) in fields.items()}
    return {field: value for field, value in values.items() if value is not None}


@dataclass(frozen=True)
class Sentinels:
    addresses: tuple  # ((host, port), ...)
    master: str = "factor6"


def sentinels(env):
    """``REDIS_SENTINELS=host:port,...`` and ``REDIS_MASTER_NAME`` (``factor6``); None when unset."""
    text = env.get("REDIS_SENTINELS", "").strip()
    if not text:
        return None
    addresses = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS must be host:port,host:port..., not {text!r}")
        addresses.append((host, int(port)))
    return Sentinels(tuple(addresses), env.get("REDIS_MASTER_NAME", "").strip() or "factor6")


def instance_name(env):
    """honcho names each process ``web.1``, ``web.2`` ...; ``PS`` is the Heroku-style fallback.

    Without either (a container, a bare gunicorn) the host name tells instances apart.
    """
    return env.get("HONCHO_PROCESS_NAME") or env.get("PS") or socket.gethostname()


def formation_id(env):
    """The formation's identity, ``FORMATION_ID``: the same for every process of one formation; '' when unset
    (then the backing supervisor makes one and keeps it in Redis, and the web processes read it there).

    >>> formation_id({"FORMATION_ID": " f1a2b "}), formation_id({})
    ('f1a2b', '')
    >>> formation_id({"FORMATION_ID": "two words"})
    Traceback (most recent call last):
    ...
    ValueError: FORMATION_ID must be 1-64 characters of [A-Za-z0-9._-], not 'two words'
    """
    text = env.get("FORMATION_ID", "").strip()
    if text and not FORMATION_ID.fullmatch(text):
        raise ValueError(f"FORMATION_ID must be 1-64 characters of [A-Za-z0-9._-], not {text!r}")
    return text


def fresh_formation_id():
    """A new formation identity, for a formation started without ``FORMATION_ID``."""
    return f"f{uuid.uuid4().hex[:12]}"


def port_problem(host, port, setting):
    """None when this process could listen on ``host:port`` now; else one line naming the ``setting`` to change.
    Checked before a start, so that a port another formation holds ends it at once, not after retries."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):  # SO_REUSEADDR, as the servers themselves bind
            return None
    except OSError as exc:
        why = "taken (another formation's?)" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        return f"cannot listen on {host or '*'}:{port}: {why}; set {setting} to a free port"


def idempotency_ttl(env):
    """Seconds a key, a run's ledger and its record are kept; a retry after that counts again."""
    return number(env, "IDEMPOTENCY_TTL", 24 * 3600, least=1)


def redis_timeout(env):
    """Seconds a Redis connect or reply may take (``REDIS_TIMEOUT``) before the request gets its 503."""
    return number(env, "REDIS_TIMEOUT", 1.5, least=0.001)


def redis_url(env):
    if env.get("REDIS_URL"):
        return env["REDIS_URL"]
    host = env.get("HOST_REDIS", "127.0.0.1")
    port = env.get("PORT_REDIS", "6379")
    return f"redis://{host}:{port}/0"
