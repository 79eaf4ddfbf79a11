"""Whether a run reads its formation's Redis: the identity the instances report against the one in that Redis.

    problem = mismatch("http://127.0.0.1:8000", client, "redis://127.0.0.1:6379/0")    # None, or one line

Every web answer names its formation (``X-Factor6-Formation``, web/identity.py); the formation's Redis holds
the same identity (``factor6:formation``, written by the backing supervisor at every start of its server). A
ledger read from another Redis (a system one, another formation's) would convict a correct formation of losing
every hit, so the Locust plugin asks before a run starts and stops it with NO VERDICT when they differ. A Redis
that restarted empty is given the same identity back by its supervisor: it forgot, it is not another Redis.

    >>> compare("f1", "f1", "http://p", "redis://r") is None
    True
    >>> print(compare("f1", "f2", "http://p", "redis://r", who="web.1"))
    wrong Redis: the formation at http://p is f1 (web.1 says so) but the Redis at redis://r holds formation f2 (...)

When no web instance answers (none up yet, or not a factor6 formation), nothing is known and nothing is refused.
"""
import time

import requests
from redis.exceptions import RedisError

from common.schema import FORMATION_HEADER, FORMATION_KEY

PATIENCE_S = 5.0  # a formation starting, or its Redis just restarted: the identities may agree a moment later
POLL_S = 0.5


def reported(host, timeout=2.0):
    """(the formation identity a web instance behind ``host`` reports, or None; who said so); (None, None) when
    no web instance answers."""
    try:
        response = requests.get(f"{host.rstrip('/')}/healthz", timeout=timeout)
    except requests.RequestException:
        return None, None
    served_by = response.headers.get("X-Served-By")
    return (response.headers.get(FORMATION_HEADER), served_by.partition(";")[0]) if served_by else (None, None)


def recorded(client):
    """The formation identity in the Redis ``client`` reads, or None."""
    return client.get(FORMATION_KEY)


def compare(instance_says, redis_says, host, redis_url, who=None):
    """None when the identities agree; else the one line naming both."""
    if instance_says == redis_says:
        return None
    formation = f"the formation at {host} is {instance_says or 'without an identity'}" + (f" ({who} says so)"
                                                                                         if who else "")
    held = f"holds formation {redis_says}" if redis_says else "holds no formation identity"
    return f"wrong Redis: {formation} but the Redis at {redis_url} {held} (--redis-url: the formation's Redis)"


def mismatch(host, client, redis_url, patience_s=PATIENCE_S):
    """None when the instances behind ``host`` and the Redis ``client`` reads name one formation, or when no
    instance answers; else the line naming both: at once for two identities, after ``patience_s`` when one
    side has none."""
    deadline = time.monotonic() + patience_s
    while True:
        instance_says, who = reported(host)
        if who is None:
            return None
        try:
            redis_says = recorded(client)
        except RedisError:
            return None  # the run's own start says so, with its own reason
        problem = compare(instance_says, redis_says, host, redis_url, who)
        # Two identities differ for good; one missing may be a server just restarted, not given its identity yet.
        if problem is None or (instance_says and redis_says) or time.monotonic() >= deadline:
            return problem
        time.sleep(POLL_S)
