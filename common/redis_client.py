"""The one way runtime code opens a Redis client; with Sentinel, one that follows the primary.

    >>> client = connect("redis://127.0.0.1:6379/0")              # REDIS_TIMEOUT, or 1.5 s
    >>> client = connect("redis://127.0.0.1:6379/0", timeout=0.5)
    >>> client = connect("redis://127.0.0.1:6379/0", env={"REDIS_SENTINELS": "127.0.0.1:26379"})  # the primary
    >>> reader = connect_async("redis://127.0.0.1:6379/0", 1.5, sentinels({"REDIS_SENTINELS": "127.0.0.1:26379"}))
    >>> type(reader).__module__                                      # the same, for asyncio (the proxy)
    'redis.asyncio.client'
    >>> primary_address(sentinels({"REDIS_SENTINELS": "127.0.0.1:1"}))        # nobody answers: None
    >>> check_sentinels(sentinels({"REDIS_SENTINELS": "127.0.0.1:1"}))
    'none of the Sentinels at 127.0.0.1:1 answers'

redis-py retries a command after a dropped connection by default. For ``INCR`` that
re-send can count one hit twice, so client-level retries are off: retrying is the
caller's job, made safe by an ``Idempotency-Key``.

Connecting and every reply are bounded by ``timeout`` seconds, so a Redis that is
gone, or frozen (SIGSTOP), costs a request that long and a 503, never a worker
hung until gunicorn's timeout kills it. A connection that failed is dropped and
the next command opens a new one: reconnecting needs nothing from the caller.

With ``REDIS_SENTINELS`` set (web.config.sentinels), the URL gives only the
database and password: each new connection asks the Sentinels for the primary of
``REDIS_MASTER_NAME`` (redis-py's ``Sentinel.master_for``), so after a failover
the next connection goes to the new one, with no restart. A connection still open
to a demoted primary gets READONLY on its next write, which redis-py turns into a
ConnectionError and a dropped connection: a 503 for that request, never a crash.

``connect_async`` is the same client for asyncio (redis.asyncio), with the same options, for the
proxy's registry reader; its timeout and Sentinels come from the proxy's Config, which read them.
"""
import os
from collections import namedtuple

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

from common.settings import redis_timeout, sentinels

MASTER_OPTIONS = ("db", "username", "password")

# redis-py's two families of the same classes: blocking, and asyncio.
Flavour = namedtuple("Flavour", "redis retry sentinel")
BLOCKING = Flavour(redis.Redis, Retry, Sentinel)
ASYNCIO = Flavour(redis.asyncio.Redis, redis.asyncio.retry.Retry, redis.asyncio.sentinel.Sentinel)


def connect(url, timeout=None, env=None):
    env = os.environ if env is None else env
    return opened(BLOCKING, url, redis_timeout(env) if timeout is None else timeout, sentinels(env))


def connect_async(url, timeout, settings):
    """``connect`` for asyncio; ``settings`` is ``web.config.sentinels(env)``: None for the plain ``url``."""
    return opened(ASYNCIO, url, timeout, settings)


def opened(flavour, url, timeout, settings):
    options = dict(retry=flavour.retry(NoBackoff(), 0), socket_connect_timeout=timeout, socket_timeout=timeout,
                   decode_responses=True)
    if settings is None:
        return flavour.redis.from_url(url, **options)
    parsed = parse_url(url)
    return sentinel_of(settings, timeout, flavour).master_for(
        settings.master, **options, **{name: parsed[name] for name in MASTER_OPTIONS if name in parsed})


def sentinel_of(settings, timeout=0.5, flavour=BLOCKING):
    return flavour.sentinel(list(settings.addresses), socket_connect_timeout=timeout, socket_timeout=timeout)


def primary_address(settings, timeout=0.5):
    """(host, port) of the primary the Sentinels name (one that they do not see as down); else None."""
    try:
        return sentinel_of(settings, timeout).discover_master(settings.master)
    except redis.RedisError:
        return None


def check_sentinels(settings, timeout=0.5):
    """None when a quorum of the Sentinels answers and they know the master; else one line saying why not."""
    listed = ",".join(f"{host}:{port}" for host, port in settings.addresses)
    answers = []
    for host, port in settings.addresses:
        client = redis.Redis(host=host, port=port, socket_connect_timeout=timeout, socket_timeout=timeout,
                             decode_responses=True, retry=Retry(NoBackoff(), 0))
        try:
            client.ping()
            answers.append(client)
        except redis.RedisError:
            pass
    if not answers:
        return f"none of the Sentinels at {listed} answers"
    try:
        answers[0].execute_command("SENTINEL", "CKQUORUM", settings.master)
    except redis.ResponseError as exc:
        if "No such master" in str(exc):
            known = list(answers[0].sentinel_masters())
            return (f"the Sentinels at {listed} know no master named {settings.master!r} "
                    f"(REDIS_MASTER_NAME; they monitor: {', '.join(known) or 'nothing'})")
        return f"the Sentinels at {listed} cannot fail {settings.master!r} over: {exc} ({len(answers)} answer)"
    except redis.RedisError as exc:
        return f"the Sentinel at {listed} did not answer CKQUORUM: {type(exc).__name__}: {exc}"
    return None
