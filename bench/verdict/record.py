"""A run's record in Redis: the counter when the run began, and how it ended once concluded.

    start_run(client, "r1", ttl=86400)          # before the first hit
    ...
    seal_run(client, "r1", counter_end=412, ledger_length=398)

A sealed run is judged as it ended (``sources.read_redis`` reads the sealed
counter and ledger length), so a later re-check is not misled by hits made
after it. The record expires with the run's ledger.
"""
from common.schema import COUNTER, run_record


def start_run(client, run, ttl):
    """Note the counter before the run's first hit; kept as long as the run's ledger."""
    client.hset(run_record(run), "counter_start", int(client.get(COUNTER) or 0))
    client.expire(run_record(run), ttl)


def seal_run(client, run, counter_end, ledger_length):
    """Note how the run ended, so a later check is not misled by hits made after it."""
    client.hset(run_record(run), mapping={"counter_end": counter_end, "ledger_length": ledger_length})
