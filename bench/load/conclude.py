"""A run's conclusion, as a pipeline: read, check, judge, break down, then seal and write.

    source, verdict = snapshot(run)                                # live: read and check, as of now
    verdict = conclude(run, missing_workers, proof, chaos_summary, interrupted)   # after the stop: every step

``run`` is a bench.load.run.Run (its id, Redis client, folder, journal and
workloads). Each step is a function of its own, and a verdict is a value
(``dataclasses.replace``), never changed once built:

- ``read``: the journal so far and one consistent read of the ledger and
  counter, waiting for Redis while something could bring it back
  (``redis_prospect``; a few seconds when nothing could: then the verdict is
  unknown, its first error saying how long it waited and why it stopped);
  and whether Redis forgot the run's record (``REDIS_PERSISTENCE=none``);
- ``check``: each of the run's workloads by its checker (bench/verdict/workloads.py);
- ``judge``: what was wrong with the input, and why a run with nothing wrong
  still proved nothing (``inconclusive``): nothing acknowledged, too few
  tries succeeded, the users never reached the number asked for, the chaos
  asked for did not happen, or Redis forgot the run (then only the
  journal-only checks judged, and finding nothing wrong proves nothing);
- ``break_down``: which failover of the primary caused what (bench/verdict/failover.py);
- ``seal``: the run's record, so a later check judges it as it ended;
- ``write``: verdict.json, verdict.txt, journal.jsonl and run.json, and the table on the console.
"""
import json
import os
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import gevent
import redis

from backing.supervisor import running as supervisor_running
from bench.chaos.vocabulary import FOLLOW_UPS, KILLS
from bench.runfolder import CHAOS, JOURNAL, REDIS_DATA, RUN, VERDICT_JSON, VERDICT_TXT, read_jsonl, write_jsonl
from bench.verdict import render, workloads
from bench.verdict.failover import breakdown, counter_history, failovers_of
from bench.verdict.record import seal_run
from bench.verdict.sources import RedisGone, Source, patiently, read_redis
from common.settings import sentinels
from common.redis_client import sentinel_of
from common.schema import run_record

PATIENCE_S = 30  # at the end, Redis may be restarting, or a failover of the primary under way: wait for it
GRACE_S = 3  # when nothing could bring Redis back: time for a blip (a dropped connection) to pass


@dataclass(frozen=True)
class Reading:
    """What ``read`` found: the run's events, its ledger and counters (None when Redis could not be read)."""

    source: Source
    events: list
    ledger: list | None = None
    counter_start: int | None = None
    counter_end: int | None = None
    forgot: bool = False  # the run's record is gone: Redis forgot it

def redis_prospect(run):
    """Whether something could bring the run's Redis back, and what, or what was looked for.

    The Sentinels answering (a failover elects a new primary within seconds), or the backing service's
    supervisor running (it restarts a dead server at once): the run folder's data folder, or ``$REDIS_DATA``,
    holds its pid file, locked while it runs."""
    settings = sentinels(os.environ)
    if settings:
        for sentinel in sentinel_of(settings).sentinels:
            try:
                sentinel.ping()
                address = sentinel.get_connection_kwargs()
                return True, f"the Sentinel at {address['host']}:{address['port']} answers"
            except redis.RedisError:
                pass
    folders = dict.fromkeys(Path(folder) for folder in (run.report_dir / REDIS_DATA, os.environ.get("REDIS_DATA"))
                            if folder)
    for folder in folders:
        if supervisor_running(folder):
            return True, f"the supervisor of {folder} runs"
    return False, ("no Sentinel answers" if settings else "no Sentinel configured") + ", no supervisor runs for " + (
        " or ".join(map(str, folders)))


def read(run, patience_s=0, prospect=None):
    """The journal so far and one consistent read of the run's ledger and counter (tried again for
    ``patience_s`` while Redis does not answer: see ``patiently``); with ``prospect``, whether Redis forgot
    the run's record too. A ledger that could not be read is None, the reason in the source's errors."""
    events = list(run.journal.events)
    source = Source(run=run.run_id, events=len(events), journals=run.journal_names)

    def ledger_and_counters():
        ledger, start, end = read_redis(source, run.client)
        return list(ledger), start, end

    try:
        ledger, start, end = patiently(ledger_and_counters, patience_s, prospect=prospect, grace_s=GRACE_S)
        forgot = prospect is not None and not patiently(
            lambda: run.client.hexists(run_record(run.run_id), "counter_start"), patience_s, prospect=prospect,
            grace_s=GRACE_S)
    except RedisGone as gone:  # no ledger, no counter: no check, but the journal and the reason are kept
        source.errors.append(f"the ledger and run record could not be read: {gone}")
        return Reading(source, events)
    return Reading(source, events, ledger, start, end, forgot)


def check(run, reading, as_of=None):
    """Each of the run's workloads judged by its checker; None when the ledger could not be read. The pure
    check is CPU-bound: a native thread keeps the users' greenlets running meanwhile."""
    if reading.ledger is None:
        return None
    return gevent.get_hub().threadpool.apply(
        workloads.check, (run.workloads, reading.events, reading.ledger, reading.counter_start, reading.counter_end),
        {"as_of": as_of})


def snapshot(run, as_of=None):
    """The live check: the journal so far against the ledger as it is now, completions after ``as_of`` in flight."""
    as_of = time.time() if as_of is None else as_of
    reading = read(run)
    return reading.source, check(run, reading, as_of)


def proof(total, min_success, users_asked, peak_users, chaos_rate, chaos_summary):
    """What was asked of the run, and what happened: the inputs of the 'proved nothing' rules (``inconclusive``).

    ``total`` is Locust's total stats entry; ``chaos_summary`` the engine's summary, or None without chaos."""
    summary = chaos_summary or {"actions": {}}
    actions = summary["actions"]
    return {"tries": total.num_requests, "failed_tries": total.num_failures, "min_success": min_success,
            "users_asked": users_asked, "peak_users": peak_users,
            "chaos_asked": chaos_rate * summary.get("scheduled_s", 0),
            "chaos_applied": sum(counts.get("ok", 0) for action, counts in actions.items() if action not in FOLLOW_UPS),
            "kills": sum(actions.get(action, {}).get("ok", 0) for action in KILLS)}


def inconclusive(verdict, proof):
    """Why a run with nothing wrong still proved nothing; ``proof`` holds what was asked and what happened."""
    reasons = []  # "nothing acknowledged" is each workload's checker's to say (bench/verdict/workloads.py)
    tries, failed = proof.get("tries", 0), proof.get("failed_tries", 0)
    if tries and (tries - failed) / tries < proof["min_success"]:
        reasons.append(f"only {tries - failed:,} of {tries:,} tries succeeded,"
                       f" under the minimum share of {proof['min_success']:.0%} (--min-success)")
    if proof.get("users_asked") and proof.get("peak_users", 0) < proof["users_asked"]:
        reasons.append(f"the load reached {proof['peak_users']} users of the {proof['users_asked']} asked")
    asked = proof.get("chaos_asked", 0)
    if asked and proof.get("chaos_applied", 0) < asked / 2:
        reasons.append(f"chaos was asked for about {asked:.0f} actions but {proof.get('chaos_applied', 0)}"
                       f" were applied (fewer than half)")
    return reasons


def forgotten(run_id):
    return (f"the run record {run_record(run_id)}, written when the run began, is gone: Redis forgot it (a restart"
            " without persistence, a failover to a replica that lagged?), and with it ledger entries and the counter;"
            " only the journal-only checks judged")


def judge(reading, verdict, missing, proof):
    """The verdict with what was wrong with its input (journals ``missing`` included) and why it proved nothing."""
    source = replace(reading.source, errors=reading.source.errors + [
        f"journal of worker {worker} incomplete or missing" for worker in missing])
    verdict = render.with_source(source, verdict)
    forgot = [forgotten(source.run)] if reading.forgot else []
    return source, replace(verdict, inconclusive=verdict.inconclusive + forgot + inconclusive(verdict, proof))


def break_down(run, verdict):
    """One row per failover of the primary, with what it cost (bench/verdict/failover.py); none when no
    failover happened (a run without Sentinel)."""
    chaos = read_jsonl(run.report_dir / CHAOS)
    return breakdown(run.journal.events, chaos, verdict) if failovers_of(chaos) else []


def seal(run, source, verdict, prospect):
    """Note how the run ended in its record, so a later check judges it as it stood."""
    if verdict.stats.get("counter_end") is not None:
        patiently(lambda: seal_run(run.client, run.run_id, verdict.stats["counter_end"], source.ledger_length),
                  PATIENCE_S, prospect=prospect, grace_s=GRACE_S)


def write(run, source, verdict, failovers, proof, chaos_summary, interrupted):
    """verdict.json, journal.jsonl, run.json and verdict.txt in the run's folder; the table on the console."""
    out = run.report_dir
    extra = {"chaos": chaos_summary, "proof": proof, "failovers": failovers}
    if failovers:
        extra["counter_history"] = counter_history(run.journal.events)
    if interrupted:
        extra["interrupted"] = interrupted
    render.write_json(out / VERDICT_JSON, render.report_json(source, verdict, **extra))
    write_jsonl(out / JOURNAL, run.journal.events)
    (out / RUN).write_text(json.dumps(run.settings) + "\n")
    table = render.console(source, verdict, failovers, interrupted)
    (out / VERDICT_TXT).write_text(table + "\n")
    print(table, flush=True)


def conclude(run, missing, proof, chaos_summary=None, interrupted=None):
    """The final verdict of ``run``, every step in turn; ``missing`` are the incomplete journals."""
    hope = partial(redis_prospect, run)
    as_of = time.time()  # taken before the read: a completion after it was in flight when the ledger was read
    reading = read(run, PATIENCE_S, prospect=hope)
    source, verdict = judge(reading, check(run, reading, as_of), missing, proof)
    failovers = break_down(run, verdict)
    seal(run, source, verdict, hope)
    write(run, source, verdict, failovers, proof, chaos_summary, interrupted)
    return verdict
