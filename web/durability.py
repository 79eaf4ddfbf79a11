"""When a hit counts as acknowledged: ``REDIS_DURABILITY`` (web.config.durability) as commands and a test.

    >>> from web.config import Durability
    >>> confirm_command(Durability("wait", replicas=2, timeout_ms=500))
    ['WAIT', 2, 500]
    >>> confirm_command(Durability("waitaof", replicas=1, timeout_ms=500))    # the local AOF and one replica's
    ['WAITAOF', 1, 1, 500]
    >>> confirmed(Durability("wait", replicas=2), 1), confirmed(Durability("waitaof", replicas=1), [1, 1])
    (False, True)
    >>> confirm_command(Durability("async"))                                  # acknowledged once applied
    []

``WAIT`` and ``WAITAOF`` wait for the writes of the connection they are sent on, so
web/hits.py sends one in the same pipeline as the hit's script. A replayed hit
writes too (its record's expiry), so a replay is only acknowledged once everything
before it in the replication stream, its first application included, is confirmed.
A hit that is not confirmed in time raises ``Unconfirmed``: it may or may not have
been applied, and may or may not survive a failover, so the client is answered 503
with ``"outcome": "unknown"`` and never an acknowledgement; its retry with the same
key gets the same number once that is confirmed.
"""


class Unconfirmed(Exception):
    """Applied on the primary, but not confirmed by as many replicas (or AOFs) as asked in time."""


def confirm_command(durability):
    if durability.mode == "wait":
        return ["WAIT", durability.replicas, durability.timeout_ms]
    if durability.mode == "waitaof":
        return ["WAITAOF", 1, durability.replicas, durability.timeout_ms]
    return []


def confirmed(durability, reply):
    if durability.mode == "wait":
        return int(reply) >= durability.replicas
    if durability.mode == "waitaof":
        local, replicas = (int(n) for n in reply)
        return local >= 1 and replicas >= durability.replicas
    return True
