"""Configuration of a web process, read from the environment in one place.

    >>> cfg = Config.from_env({"HOST_REDIS": "10.0.0.7", "PORT_REDIS": "6390"})
    >>> cfg.redis_url
    'redis://10.0.0.7:6390/0'
    >>> cfg.redis_timeout        # seconds: a frozen Redis answers 503 this soon, long before WEB_TIMEOUT
    1.5

``REDIS_URL`` wins; without it the seed's ``HOST_REDIS``/``PORT_REDIS`` are honoured.

    >>> Config.from_env({"SESSION_STORE": "cookie"})
    Traceback (most recent call last):
    ...
    ValueError: SESSION_STORE=cookie needs SECRET_KEY, one secret shared by every instance

``REDIS_DURABILITY`` says when a hit is acknowledged:

    >>> durability({"REDIS_DURABILITY": "wait", "REDIS_WAIT_REPLICAS": "2"})
    Durability(mode='wait', replicas=2, timeout_ms=1000)

The readers every process type shares (``number``, ``redis_url``, ``sentinels``...) are common.settings'.
"""
import os
from dataclasses import dataclass

from common.settings import formation_id, idempotency_ttl, instance_name, number, redis_timeout, redis_url

HIT_MODES = ("atomic", "seed", "local")
SESSION_STORES = ("redis", "cookie", "memory")  # memory is wrong on purpose: web/sessions.py
SCRATCH_MODES = ("delete", "keep")  # keep is wrong on purpose: web/uploads.py
DURABILITY_MODES = ("async", "wait", "waitaof")


@dataclass(frozen=True)
class Durability:
    """When a hit is acknowledged: ``async`` once the primary applied it; ``wait`` once ``replicas``
    replicas have it too (``WAIT``); ``waitaof`` once the primary's and ``replicas`` replicas' append-only
    files hold it (``WAITAOF``), each within ``timeout_ms``, else the hit's outcome is unknown (503)."""
    mode: str = "async"
    replicas: int = 1
    timeout_ms: int = 1000


def durability(env):
    mode = env.get("REDIS_DURABILITY", "").strip() or "async"
    if mode not in DURABILITY_MODES:
        raise ValueError(f"REDIS_DURABILITY must be one of {', '.join(DURABILITY_MODES)}, not {mode!r}")
    return Durability(mode, number(env, "REDIS_WAIT_REPLICAS", 1), number(env, "REDIS_WAIT_TIMEOUT_MS", 1000, least=1))


@dataclass(frozen=True)
class Config:
    redis_url: str
    instance: str
    hit_mode: str = "atomic"
    # How long an Idempotency-Key is remembered; a retry after that counts again.
    idempotency_ttl: int = 24 * 3600
    # Simulated work per hit, so demos and drain tests have requests that take a while.
    work_ms: int = 0
    # Seconds a Redis connect or reply may take; then the request answers 503 and the next one reconnects.
    redis_timeout: float = 1.5
    # Where a visitor's session lives (web/sessions.py), and the secret that signs session cookies.
    session_store: str = "redis"
    secret_key: str = ""
    session_lifetime: int = 3600
    # Uploads (web/uploads.py): the largest body, what happens to the scratch file, where scratch folders go.
    upload_max_bytes: int = 64 * 1024 * 1024
    scratch: str = "delete"
    scratch_dir: str = ""
    durability: Durability = Durability()
    # FORMATION_ID, or '' to read the formation's identity from Redis (web/identity.py).
    formation: str = ""

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        mode = env.get("HIT_MODE", "atomic")
        if mode not in HIT_MODES:
            raise ValueError(f"HIT_MODE must be one of {', '.join(HIT_MODES)}, not {mode!r}")
        store, scratch = env.get("SESSION_STORE", "redis"), env.get("SCRATCH", "delete")
        if store not in SESSION_STORES:
            raise ValueError(f"SESSION_STORE must be one of {', '.join(SESSION_STORES)}, not {store!r}")
        if store == "cookie" and not env.get("SECRET_KEY"):
            # A per-process random secret would itself be process state: no other instance could read the cookie.
            raise ValueError("SESSION_STORE=cookie needs SECRET_KEY, one secret shared by every instance")
        if scratch not in SCRATCH_MODES:
            raise ValueError(f"SCRATCH must be one of {', '.join(SCRATCH_MODES)}, not {scratch!r}")
        return cls(
            redis_url=redis_url(env),
            instance=instance_name(env),
            hit_mode=mode,
            idempotency_ttl=idempotency_ttl(env),
            work_ms=number(env, "WORK_MS", 0),
            redis_timeout=redis_timeout(env),
            session_store=store,
            secret_key=env.get("SECRET_KEY", ""),
            session_lifetime=number(env, "SESSION_LIFETIME", 3600, least=1),
            upload_max_bytes=number(env, "UPLOAD_MAX_BYTES", 64 * 1024 * 1024),
            scratch=scratch,
            scratch_dir=env.get("SCRATCH_DIR", ""),
            durability=durability(env),
            formation=formation_id(env),
        )
