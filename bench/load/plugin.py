"""The consistency plugin for Locust: journals, their collection, the live view and the verdict.

    from bench.load import plugin

    @events.init.add_listener
    def install(environment, **_):
        plugin.install(environment)

Roles follow Locust's runners. A worker journals its users' hits and streams
them to the master (``collect.Streamer``). The master, or a local runner, is
the ``Conductor`` of each run: it merges the journals (``collect.Collector``),
runs the chaos monkey, watches the formation and checks live (``live``), and
after the test stops it waits for every worker's complete journal (a missing
one makes the verdict unknown), concludes (``conclude``) and shows the verdict
in the Consistency tab, on the console, in the ``--html`` report, in the run
folder and as the exit code: 0 valid, 1 invalid, 2 unknown.

Run time: Locust's ``-t`` timer quits a distributed master before its workers
have even stopped, so in headless runs ``install`` takes ``-t`` over, once,
before anything else reads it: the Conductor stops the run itself, and a load
shape spreads over the same duration.
"""
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import gevent.event
from locust.runners import MasterRunner, WorkerRunner

from bench.chaos import KILLS, ChaosMonkey, parse_mix
from bench.load import shapes, webui
from bench.load.collect import Collector, Streamer
from bench.load.conclude import conclude
from bench.load.journal import Journal
from bench.load.live import LiveView
from bench.runfolder import CHAOS, FORMATION, write_jsonl
from bench.verdict.checker import Verdict
from bench.verdict.record import start_run
from web.config import idempotency_ttl
from web.redis_client import connect

log = logging.getLogger("factor6")


@dataclass
class Run:
    """One test run as the master sees it."""

    run_id: str
    client: object  # the formation's Redis, one client for the run
    report_dir: Path
    journal: Journal
    journal_names: list = field(default_factory=lambda: ["this process"])
    settings: dict = field(default_factory=dict)


def take_run_time(options):
    """The headless run's duration, taken from Locust (which then sets no timer of its own); else None."""
    if options and options.headless and options.run_time:
        duration, options.run_time = options.run_time, None
        return duration
    return None


class Conductor:
    """The master's (or local runner's) side of each run: start, stop, conclusion, and the tab's rows."""

    def __init__(self, environment, duration):
        self.env = environment
        self.duration = duration
        self.given_run_id = environment.parsed_options.run_id if environment.parsed_options else ""
        self.runs = 0
        self.run = None
        self.journal = Journal()  # a local runner's users write here
        self.collector = None
        self.live = None
        self.chaos = None
        self.verdict = None
        self.started_at = None
        self.stopper = None
        self.concluded = gevent.event.Event()
        self.client = None

    @property
    def options(self):
        return self.env.parsed_options

    def new_run_id(self):
        self.runs += 1
        if not self.given_run_id:
            return f"r{uuid.uuid4().hex[:10]}"
        return self.given_run_id + (f".{self.runs}" if self.runs > 1 else "")

    def on_test_start(self, **_):
        options = self.options
        # Workers receive parsed_options with their spawn message: this is how they learn the run id.
        options.run_id = self.new_run_id()
        self.client = self.client or connect(options.redis_url)
        self.journal = Journal(options.run_id)
        report_dir = Path(options.report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        self.run = Run(options.run_id, self.client, report_dir, self.journal, settings={
            "run": options.run_id, "host": self.env.host, "chaos_rate": options.chaos_rate,
            "chaos_mix": options.chaos_mix, "chaos_seed": options.chaos_seed, "users": self.users_asked(),
        })
        self.verdict, self.started_at = None, time.time()
        self.concluded.clear()
        self.collector = Collector(self.env.runner, self.journal)
        if self.collector.workers:
            self.run.journal_names = sorted(self.collector.workers)
        start_run(self.client, options.run_id, idempotency_ttl(os.environ))
        self.chaos = None
        if options.chaos_rate > 0:
            self.chaos = ChaosMonkey(self.client, rate=options.chaos_rate, mix=parse_mix(options.chaos_mix),
                                     seed=options.chaos_seed, log_path=report_dir / CHAOS, proxy_url=self.env.host)
            self.chaos.start()
        self.live = LiveView(self.run, self.env.runner)
        self.live.start()
        if self.duration:
            self.stopper = gevent.spawn(self.stop_after, self.duration)
        log.info("factor6 run %s started: %s", options.run_id, report_dir)

    def users_asked(self):
        runner = self.env.runner
        return getattr(runner, "target_user_count", 0) or self.options.num_users or 0

    def on_journal(self, environment, msg, **_):
        self.collector.on_journal(environment, msg)

    def on_journal_complete(self, environment, msg, **_):
        self.collector.on_journal_complete(environment, msg)

    def stop_after(self, seconds):
        gevent.sleep(seconds)
        log.info("run time of %ss reached: stopping users, then checking", seconds)
        runner = self.env.runner
        runner.stop()
        self.concluded.wait()
        if isinstance(runner, MasterRunner):
            # A worker reads "quit" only after its post-stop pause; were the master gone by then,
            # the worker would hang on its last send until the heartbeat gives up a minute later.
            deadline = time.monotonic() + self.env.stop_timeout + 10
            while len(runner.clients.ready) < len(self.collector.workers) and time.monotonic() < deadline:
                gevent.sleep(0.2)
        runner.quit()

    def on_test_stop(self, **_):
        if self.live:
            self.live.stop()
        if self.chaos:
            self.chaos.stop()
        gevent.spawn(self.conclude)

    def proof(self):
        """What was asked of the run, and what happened: the inputs of the 'proved nothing' rules."""
        total = self.env.runner.stats.total
        elapsed = time.time() - self.started_at
        summary = self.chaos.summary() if self.chaos else {"actions": {}}
        applied = sum(counts.get("ok", 0) for counts in summary["actions"].values())
        return {"tries": total.num_requests, "failed_tries": total.num_failures,
                "min_success": self.options.min_success, "users_asked": self.run.settings["users"],
                "peak_users": self.live.peak_users if self.live else 0,
                "chaos_asked": self.options.chaos_rate * elapsed, "chaos_applied": applied,
                "kills": sum(summary["actions"].get(action, {}).get("ok", 0) for action in KILLS)}

    def conclude(self):
        try:
            missing = self.collector.wait(self.options.journal_timeout)
            write_jsonl(self.run.report_dir / FORMATION, self.live.formation)
            self.verdict = conclude(self.run, missing, self.proof(), self.chaos.summary() if self.chaos else None)
        except Exception as exc:
            log.exception("the consistency check itself failed")
            self.verdict = Verdict(errors=[f"the check itself failed: {type(exc).__name__}: {exc}"])
        self.env.process_exit_code = self.verdict.exit_code
        self.concluded.set()

    def rows(self):
        return webui.tab_rows(self.verdict, self.run.run_id if self.run else "", self.live.counts if self.live else None,
                              self.chaos, self.live.formation if self.live else None)

    def mark_html_report(self, **_):
        webui.mark_html_report(getattr(self.options, "html_file", None), self.verdict, self.run.run_id if self.run else "")


def journal_of(environment):
    return environment.factor6.journal


def install(environment):
    runner = environment.runner
    duration = take_run_time(environment.parsed_options) if not isinstance(runner, WorkerRunner) else None
    shapes.install(environment, duration)
    if isinstance(runner, WorkerRunner):
        plugin = Streamer(environment)
    else:
        plugin = Conductor(environment, duration)
        environment.events.quitting.add_listener(plugin.mark_html_report)
        if isinstance(runner, MasterRunner):
            runner.register_message("journal", plugin.on_journal)
            runner.register_message("journal_complete", plugin.on_journal_complete)
        if environment.web_ui:
            webui.install_tab(environment.web_ui, plugin.rows)
    environment.factor6 = plugin
    environment.events.test_start.add_listener(plugin.on_test_start)
    environment.events.test_stop.add_listener(plugin.on_test_stop)
