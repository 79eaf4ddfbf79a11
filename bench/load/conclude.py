"""A run's check and conclusion: the journal against one consistent read of the ledger, then the artifacts.

    source, verdict = snapshot(run)                     # live: as of now
    verdict = conclude(run, missing_workers, proof)     # after the stop: seal, write, print

``run`` is a ``Run``, as the plugin's Conductor keeps it. The conclusion writes verdict.json,
verdict.txt, journal.jsonl and run.json into the run folder, and seals the
run's record so a later check judges it as it ended. A run that proved nothing
is ``unknown``, not valid (``inconclusive``): nothing acknowledged, too few
tries succeeded, the users never reached the number asked for, or the chaos
asked for did not happen. It waits for Redis to answer first (a chaos action may
just have restarted it, a failover of the primary be under way) while something
could bring it back (``redis_prospect``), a few seconds when nothing could: then the
verdict is unknown, its first error saying how long it waited and why it stopped.
When the run's record, written as the run began, is gone, Redis forgot
(``REDIS_PERSISTENCE=none``): the verdict says so, and rests on the journal-only
checks; finding nothing wrong then proves nothing.
"""
import json
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import gevent
import redis

from backing.supervisor import running as supervisor_running
from bench.chaos.vocabulary import FOLLOW_UPS, KILLS
from bench.load.journal import Journal
from bench.runfolder import CHAOS, JOURNAL, REDIS_DATA, RUN, VERDICT_JSON, VERDICT_TXT, read_jsonl, write_jsonl
from bench.verdict import render, workloads
from bench.verdict.failover import breakdown, counter_history
from bench.verdict.record import seal_run
from bench.verdict.sources import RedisGone, Source, patiently, read_redis
from common.settings import sentinels
from common.redis_client import sentinel_of
from common.schema import run_record

PATIENCE_S = 30  # at the end, Redis may be restarting, or a failover of the primary under way: wait for it
GRACE_S = 3  # when nothing could bring Redis back: time for a blip (a dropped connection) to pass


@dataclass
class Run:
    """One test run as the master sees it."""

    run_id: str
    client: object  # the formation's Redis, one client for the run
    report_dir: Path
    journal: Journal
    journal_names: list = field(default_factory=lambda: ["this process"])
    settings: dict = field(default_factory=dict)
    workloads: tuple = ("hits",)


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


def snapshot(run, as_of=None, patience_s=0, prospect=None):
    """Check the journal so far, each of the run's workloads by its checker, the hits against one consistent
    read of the ledger and counter (tried again for ``patience_s`` while Redis does not answer: see ``patiently``)."""
    events = list(run.journal.events)
    as_of = time.time() if as_of is None else as_of
    source = Source(run=run.run_id)

    def read():
        ledger, start, end = read_redis(source, run.client)
        return list(ledger), start, end

    ledger, start, end = patiently(read, patience_s, prospect=prospect, grace_s=GRACE_S)
    # The pure check is CPU-bound: a native thread keeps users' greenlets running meanwhile.
    verdict = gevent.get_hub().threadpool.apply(workloads.check, (run.workloads, events, ledger, start, end),
                                                {"as_of": as_of})
    return source, verdict


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


def conclude(run, missing, proof, chaos_summary=None):
    """The final verdict of ``run``, written to its folder and printed; ``missing`` are incomplete journals."""
    hope = partial(redis_prospect, run)
    try:
        source, verdict = snapshot(run, as_of=None, patience_s=PATIENCE_S, prospect=hope)
        forgot = not patiently(lambda: run.client.hexists(run_record(run.run_id), "counter_start"), PATIENCE_S,
                               prospect=hope, grace_s=GRACE_S)
    except RedisGone as gone:  # no ledger, no counter: no check, but the journal and the reason are kept
        source = Source(run=run.run_id, errors=[f"the ledger and run record could not be read: {gone}"])
        verdict, forgot = None, False
    if forgot:
        verdict.inconclusive.append(
            f"the run record {run_record(run.run_id)}, written when the run began, is gone: Redis forgot it (a restart"
            " without persistence, a failover to a replica that lagged?), and with it ledger entries and the counter;"
            " only the journal-only checks judged")
    source.events = len(run.journal.events)
    source.journals = run.journal_names
    source.errors += [f"journal of worker {w} incomplete or missing" for w in missing]
    verdict = render.with_source(source, verdict)
    if verdict.stats.get("counter_end") is not None:
        patiently(lambda: seal_run(run.client, run.run_id, verdict.stats["counter_end"], source.ledger_length),
                  PATIENCE_S, prospect=hope, grace_s=GRACE_S)
    verdict.inconclusive += inconclusive(verdict, proof)
    out = run.report_dir
    failovers = breakdown(run.journal.events, read_jsonl(out / CHAOS), verdict)
    render.write_json(out / VERDICT_JSON, render.report_json(
        source, verdict, chaos=chaos_summary, proof=proof, failovers=failovers,
        **({"counter_history": counter_history(run.journal.events)} if failovers else {})))
    write_jsonl(out / JOURNAL, run.journal.events)
    (out / RUN).write_text(json.dumps(run.settings) + "\n")
    table = render.console(source, verdict, failovers)
    (out / VERDICT_TXT).write_text(table + "\n")
    print(table, flush=True)
    return verdict
