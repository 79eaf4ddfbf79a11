"""The one way web code opens a Redis client.

    >>> client = connect("redis://127.0.0.1:6379/0")              # REDIS_TIMEOUT, or 1.5 s
    >>> client = connect("redis://127.0.0.1:6379/0", timeout=0.5)

redis-py retries a command after a dropped connection by default. For ``INCR`` that
re-send can count one hit twice, so client-level retries are off: retrying is the
caller's job, made safe by an ``Idempotency-Key``.

Connecting and every reply are bounded by ``timeout`` seconds, so a Redis that is
gone, or frozen (SIGSTOP), costs a request that long and a 503, never a worker
hung until gunicorn's timeout kills it. A connection that failed is dropped and
the next command opens a new one: reconnecting needs nothing from the caller.
"""
import os

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from web.config import redis_timeout


def connect(url, timeout=None):
    timeout = redis_timeout(os.environ) if timeout is None else timeout
    return redis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        decode_responses=True,
    )
