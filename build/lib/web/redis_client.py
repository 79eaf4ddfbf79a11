"""The one way web code opens a Redis client.

    >>> client = connect("redis://127.0.0.1:6379/0")

redis-py retries a command after a dropped connection by default. For ``INCR`` that
re-send can count one hit twice, so client-level retries are off: retrying is the
caller's job, made safe by an ``Idempotency-Key``.
"""
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect(url):
    return redis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=1,
        socket_timeout=5,
        decode_responses=True,
    )
