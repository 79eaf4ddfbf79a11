"""The proxy's settings, read from the environment in one place.

    >>> cfg = Config.from_env({"PROXY_PORT": "9000", "PROXY_BACKENDS": "127.0.0.1:5100,127.0.0.1:5101"})
    >>> cfg.port, cfg.static_backends
    (9000, ('127.0.0.1:5100', '127.0.0.1:5101'))

=========================  ===========================  ============================================
Variable                   Default                      Meaning
=========================  ===========================  ============================================
``PROXY_HOST``             ``127.0.0.1``                address to listen on
``PROXY_PORT``             ``8000``                     port to listen on
``REDIS_URL``              from ``HOST_REDIS``/         the registry's Redis, as the web process
                           ``PORT_REDIS``               reads it (``web.config.redis_url``)
``REDIS_SENTINELS``        (empty: no Sentinel)         ``host:port,...``: ask these Sentinels for
``REDIS_MASTER_NAME``      ``factor6``                  the registry's primary, and follow it through
                                                        failovers (``common.redis_client``)
``REDIS_TIMEOUT``          ``1.5``                      seconds a registry read may take
``PROXY_BACKENDS``         (empty: use the registry)    static ``host:port,...``; no Redis at all
``PROXY_ALLOW``            ``127.0.0.0/8,::1/128``      CIDRs a backend address must be in
``PROXY_BALANCE``          ``least-loaded``             ``least-loaded``: fewest requests in flight,
                                                        round robin among equals; or ``round-robin``
``PROXY_STICKY``           ``none``                     ``cookie``: pin each visitor to the instance
                                                        that served it, by an opaque cookie
                                                        (``proxy.sticky``)
``PROXY_STICKY_SECRET``    (random per process)         the key of those cookies; proxies sharing
                                                        it honour each other's
``PROXY_STAMP_KEYS``       ``1``                        give keyless requests a fresh
                                                        ``Idempotency-Key`` so retries are safe
``PROXY_TRIES``            ``3``                        tries per request, first one included
``PROXY_RETRY_WINDOW``     ``5``                        seconds after arrival when no new try starts
``PROXY_BACKOFF``          ``0.02``                     seconds; a retry waits a random 0..b*2^n
``PROXY_CONNECT_TIMEOUT``  ``1``                        seconds to connect to a backend
``PROXY_TIMEOUT``          ``30``                       seconds a backend may take to start its
                                                        response, or stall in its body
``PROXY_CLIENT_TIMEOUT``   ``10``                       seconds a client has to send its headers
                                                        (and body); also the keep-alive idle limit
``PROXY_MAX_HEADER_LINE``  ``8190``                     bytes per request line or header; else 431
``PROXY_MAX_HEADERS``      ``128``                      header count; else 431
``PROXY_MAX_BODY``         ``1048576``                  request body bytes; else 413
``PROXY_BUFFER``           ``65536``                    a response up to this size is read whole and
                                                        sent in one write; bigger ones stream
``PROXY_POLL_INTERVAL``    ``0.25``                     seconds between registry reads
``PROXY_HEALTH_INTERVAL``  ``0.5``                      seconds between probes of a down backend
``PROXY_DRAIN_TIMEOUT``    ``30``                       seconds SIGTERM waits for in-flight requests
``PROXY_ACCESS_LOG``       ``1``                        one line per request on stderr
``PROXY_LOOP``             ``uvloop``                   the event loop: ``uvloop`` or ``asyncio``
=========================  ===========================  ============================================
"""
import ipaddress
import os
from dataclasses import dataclass, field

from common.settings import numbers, redis_timeout, redis_url, sentinels


def parse_address(address):
    """``(ip, port)`` from ``host:port`` or ``[v6]:port``; the host must be an IP literal.

    Names are refused because the allow-list can only vouch for an address, not
    for whatever a name resolves to later.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return ipaddress.ip_address(host), int(port)


def parse_flag(name, value):
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 0 or 1, not {value!r}")


def split_list(value):
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_sentinels: object = None  # web.config.Sentinels: the URL then gives only the database and password
    redis_timeout: float = 1.5
    static_backends: tuple = ()
    allow: tuple = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    stamp_keys: bool = True
    tries: int = 3
    retry_window: float = 5.0
    backoff: float = 0.02
    connect_timeout: float = 1.0
    timeout: float = 30.0
    client_timeout: float = 10.0
    max_header_line: int = 8190
    max_headers: int = 128
    max_body: int = 1024 * 1024
    buffer: int = 64 * 1024
    poll_interval: float = 0.25
    registry_grace: float = 3.0  # the web instances' REGISTRY_TTL: by then every live one has re-registered
    health_interval: float = 0.5
    drain_timeout: float = 30.0
    access_log: bool = True
    balance: str = "least-loaded"
    sticky: str = "none"
    sticky_secret: bytes = field(default=b"", repr=False)  # a key: kept out of any printed Config
    loop: str = "uvloop"

    def allows(self, address):
        """True when ``address`` parses as ``ip:port`` inside one of the allowed networks."""
        try:
            ip, _ = parse_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.allow)

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        fields = {
            # setting name: (variable, type, smallest sensible value)
            "port": ("PROXY_PORT", int, 0),
            "tries": ("PROXY_TRIES", int, 1),
            "retry_window": ("PROXY_RETRY_WINDOW", float, 0),
            "backoff": ("PROXY_BACKOFF", float, 0),
            "connect_timeout": ("PROXY_CONNECT_TIMEOUT", float, 0.001),
            "timeout": ("PROXY_TIMEOUT", float, 0.001),
            "client_timeout": ("PROXY_CLIENT_TIMEOUT", float, 0.001),
            "max_header_line": ("PROXY_MAX_HEADER_LINE", int, 64),
            "max_headers": ("PROXY_MAX_HEADERS", int, 1),
            "max_body": ("PROXY_MAX_BODY", int, 0),
            "buffer": ("PROXY_BUFFER", int, 0),
            "poll_interval": ("PROXY_POLL_INTERVAL", float, 0.01),
            "registry_grace": ("PROXY_REGISTRY_GRACE", float, 0),
            "health_interval": ("PROXY_HEALTH_INTERVAL", float, 0.01),
            "drain_timeout": ("PROXY_DRAIN_TIMEOUT", float, 0),
        }
        values = numbers(env, fields)
        for name, variable in (("stamp_keys", "PROXY_STAMP_KEYS"), ("access_log", "PROXY_ACCESS_LOG")):
            if env.get(variable, "").strip():
                values[name] = parse_flag(variable, env[variable])
        if env.get("PROXY_ALLOW", "").strip():
            try:
                values["allow"] = tuple(ipaddress.ip_network(c, strict=False) for c in split_list(env["PROXY_ALLOW"]))
            except ValueError as exc:
                raise ValueError(f"PROXY_ALLOW: {exc}") from None
        for name, variable, choices in (("balance", "PROXY_BALANCE", ("least-loaded", "round-robin")),
                                         ("loop", "PROXY_LOOP", ("uvloop", "asyncio")),
                                         ("sticky", "PROXY_STICKY", ("none", "cookie"))):
            if env.get(variable, "").strip():
                values[name] = env[variable].strip().lower()
                if values[name] not in choices:
                    raise ValueError(f"{variable} must be {' or '.join(choices)}, not {env[variable]!r}")
        config = cls(
            host=env.get("PROXY_HOST", "").strip() or cls.host,
            redis_url=redis_url(env),
            redis_sentinels=sentinels(env),
            redis_timeout=redis_timeout(env),
            static_backends=split_list(env.get("PROXY_BACKENDS", "")),
            sticky_secret=env.get("PROXY_STICKY_SECRET", "").encode(),
            **values,
        )
        for address in config.static_backends:
            if not config.allows(address):
                raise ValueError(f"PROXY_BACKENDS: {address!r} is not an ip:port inside PROXY_ALLOW")
        return config
