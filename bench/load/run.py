"""One Locust run on the master (or a local runner): made at test start, concluded and let go at stop.

    run = Run(environment, "r1a2b", client, report_dir, duration=60)
    run.start()                                                        # every part in place: the load may begin
    run.stopping("Locust was told to quit")                            # drain in-flight hits; early: interrupted
    run.on_test_stop()                                                 # parts stopped
    verdict = run.conclude()                                           # valid, invalid or unknown; run.concluded set

A ``Run`` owns what a run has: its journal (a local runner's users write
there; workers stream theirs into it through the ``collector``), the chaos
engine, the live view and, once concluded, the verdict. The plugin's
Conductor keeps only the latest one, for the views; the next test start
makes a new one. Stopped by a signal to Locust or the web UI's Stop, its
users get ``DRAIN_S`` seconds to finish the hit in flight (a hit still going
after that is cut at stop); stopped so before its time, the run is
``interrupted``, and judged on what it made, with the interruption in
verdict.json, verdict.txt and the report.
"""
import logging
import os
import time

import gevent
import gevent.event
import requests
from locust.runners import MasterRunner

from bench.chaos import DEFAULT_MIX, ChaosMonkey, parse_mix
from bench.load.collect import STOPPING, Collector
from bench.load.conclude import conclude, proof
from bench.load.journal import Journal
from bench.load.live import LiveView
from bench.runfolder import CHAOS, FORMATION, PROXY_METRICS, write_jsonl
from bench.verdict import render
from bench.verdict import workloads as checked_workloads
from bench.verdict.model import Verdict
from bench.verdict.record import start_run
from common.settings import idempotency_ttl

log = logging.getLogger("factor6")
DRAIN_S = 10.0  # an interrupted run's users may finish the hit in flight for this long; later ones are cut


class Run:
    """One test run as the master sees it, from its start to its verdict."""

    def __init__(self, environment, run_id, client, report_dir, duration=None):
        options = environment.parsed_options
        self.env, self.run_id, self.client, self.report_dir = environment, run_id, client, report_dir
        self.duration = duration or getattr(options, "run_time", None)  # the UI's run time, else none
        self.began = time.time()
        self.journal = Journal(run_id)
        self.workloads = checked_workloads.parse(options.workload)
        self.settings = {"run": run_id, "host": environment.host, "chaos_rate": options.chaos_rate,
                         "chaos_mix": options.chaos_mix, "chaos_seed": options.chaos_seed,
                         "users": users_asked(environment), "hits": options.hits, "workloads": list(self.workloads)}
        self.verdict = None
        self.interrupted = None  # {"cause", "after_s", "of_s", "drain_s"} once stopped before its time
        self.concluded = gevent.event.Event()
        self.stopped = False
        self.failed = None  # why the run was stopped with no verdict (a handler failed)
        self.collector = Collector(environment.runner, self.journal)
        self.chaos = self.live = self.proxy_start = None  # made by start()

    def start(self):
        """Note the run in Redis, then start its chaos engine and live view."""
        environment, options, client, report_dir = self.env, self.env.parsed_options, self.client, self.report_dir
        report_dir.mkdir(parents=True, exist_ok=True)
        start_run(client, self.run_id, idempotency_ttl(os.environ))
        self.proxy_start = proxy_metrics(environment.host)
        # Every run has an engine, so the Formation page's buttons are journaled; it schedules only with a rate.
        # Without a rate the mix is never drawn from (under --hosts it may name network actions, which the
        # agents in the machine's own namespace make): the buttons name their actions themselves. The schedule
        # runs apart, in a process of its own: among the users' greenlets its turns came late.
        mix = parse_mix(options.chaos_mix) if options.chaos_rate > 0 else DEFAULT_MIX
        self.chaos = ChaosMonkey(client, rate=options.chaos_rate, mix=mix, seed=options.chaos_seed,
                                 log_path=report_dir / CHAOS, proxy_url=environment.host, apart_url=options.redis_url)
        if options.chaos_rate > 0:
            self.chaos.start()
        self.live = LiveView(self, environment.runner)
        self.live.start()

    @property
    def started(self):
        """Load may flow and buttons act: from the end of start() to the stop."""
        return self.live is not None and not self.stopped

    @property
    def journal_names(self):
        return sorted(self.collector.workers) or ["this process"]

    def ended(self):
        """Whether the run reached its time (or has none): a stop then is no interruption."""
        return not self.duration or time.time() - self.began >= self.duration - 1

    def stopping(self, cause):
        """Locust is about to stop the users for ``cause`` (a signal, the UI's Stop): they get ``DRAIN_S`` s to
        finish their hit in flight, and before the run's time the run is ``interrupted``, still judged on what it
        made. Does nothing once the users are stopped."""
        if self.stopped:
            return
        if not (self.interrupted or self.ended()):
            self.interrupted = {"cause": cause, "after_s": round(time.time() - self.began, 1),
                                "of_s": self.duration, "drain_s": DRAIN_S}
            log.warning("factor6 run %s interrupted (%s): its users get %.0f s to finish their hits, then it is"
                        " judged", self.run_id, cause, DRAIN_S)
        self.env.stop_timeout = max(self.env.stop_timeout or 0, DRAIN_S)
        if isinstance(self.env.runner, MasterRunner):
            self.env.runner.send_message(STOPPING, DRAIN_S)  # before Locust's "stop": messages keep their order

    def on_test_stop(self):
        """The load has stopped: stop the parts. Whether the run is to be concluded (not when it failed).
        A stop before the run's time that no one announced (the workers lost, a signal Locust acted on first)
        is an interruption too."""
        if not (self.interrupted or self.ended()):
            self.interrupted = {"cause": "the load stopped before its time", "of_s": self.duration,
                                "after_s": round(time.time() - self.began, 1), "drain_s": 0}
        self.stopped = True
        for part in (self.live, self.chaos):
            if part:
                part.stop()
        return self.verdict is None

    def conclude(self):
        try:
            missing = self.collector.wait(self.env.parsed_options.journal_timeout)
            write_jsonl(self.report_dir / FORMATION, self.live.formation)
            render.write_json(self.report_dir / PROXY_METRICS,
                              {"start": self.proxy_start, "end": proxy_metrics(self.env.host)})
            summary = self.chaos.summary()
            self.verdict = conclude(self, missing, self.proof(summary), summary, self.interrupted)
        except Exception as exc:
            log.exception("the consistency check itself failed")
            self.verdict = Verdict(errors=[f"the check itself failed: {type(exc).__name__}: {exc}"])
        self.env.process_exit_code = self.verdict.exit_code
        self.concluded.set()
        return self.verdict

    def fail(self, reason):
        """No verdict: ``reason`` is the run's one line; the run concludes no further."""
        self.failed = reason
        self.verdict = Verdict(errors=[reason])
        self.env.process_exit_code = self.verdict.exit_code
        self.concluded.set()

    def proof(self, chaos_summary):
        options = self.env.parsed_options
        return proof(self.env.runner.stats.total, options.min_success, self.settings["users"], self.live.peak_users,
                     options.chaos_rate, chaos_summary)


def users_asked(environment):
    return getattr(environment.runner, "target_user_count", 0) or environment.parsed_options.num_users or 0


def proxy_metrics(host):
    """The proxy's ``/_proxy/metrics`` at ``host``; None when it is not a factor6 proxy or does not answer."""
    try:
        response = requests.get(f"{host}/_proxy/metrics", timeout=2)
        return response.json() if response.ok else None
    except (requests.RequestException, ValueError):
        return None
