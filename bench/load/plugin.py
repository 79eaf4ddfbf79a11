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

A failure in any of its event handlers (Redis away at the start, say) stops
the run with the reason on the console in one line and exit status 2: never a
traceback and a run that goes on forever. Bad option values are refused before
anything starts (``options``): at start-up with exit status 2, and in the web
UI's start form with the reason in place of Locust's ``success: true``.

Folders: a headless run writes where ``--report-dir`` says (``scripts/check``
gives each check its own), or in ``reports/<time>-locust-<run>``; every web-UI
run gets a folder of its own, ``<report-dir or reports>/<time>-ui-<run>``, and
its HTML report (bench.harness.report) at Stop. The proxy's metrics at the
start and the end go in the folder too (``proxy_metrics.json``), so the report
can tell how many requests the proxy retried during the run.

Workloads: ``--workload hits,session`` keeps only the user classes whose
``workload`` is named (a name not in bench.verdict.workloads.WORKLOADS stops
Locust with the list), and the conclusion composes those workloads' checkers.

Run time: Locust's ``-t`` timer quits a distributed master before its workers
have even stopped, so in headless runs ``install`` takes ``-t`` over, once,
before anything else reads it: the Conductor stops the run itself, and a load
shape spreads over the same duration.
"""
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import gevent
import gevent.event
import requests
from locust.runners import MasterRunner, WorkerRunner

from bench.chaos import DEFAULT_MIX, ChaosMonkey, parse_mix
from bench.load import dashboard, identity, shapes, webui
from bench.load import options as plugin_options
from bench.load.collect import Collector, Streamer
from bench.load.conclude import Run, conclude, proof
from bench.load.journal import Journal
from bench.load.live import LiveView
from bench.paths import ROOT
from bench.runfolder import CHAOS, FORMATION, PROXY_METRICS, write_jsonl
from bench.verdict import render
from bench.verdict import workloads as checked_workloads
from bench.verdict.checker import Verdict
from bench.verdict.record import start_run
from common.settings import idempotency_ttl
from common.redis_client import connect

log = logging.getLogger("factor6")


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
        self.started = False  # True from the end of on_test_start to the stop
        self.stopper = None
        self.concluded = gevent.event.Event()
        self.client = None
        self.failed = None  # the reason a handler failed: the run stops, no verdict is made
        self.proxy_start = None

    @property
    def options(self):
        return self.env.parsed_options

    def new_run_id(self):
        self.runs += 1
        if not self.given_run_id:
            return f"r{uuid.uuid4().hex[:10]}"
        return self.given_run_id + (f".{self.runs}" if self.runs > 1 else "")

    def guarded(self, what, handler):
        """``handler`` as an event listener whose failure aborts the run (Locust's would only log it)."""
        def listener(**kwargs):
            try:
                return handler(**kwargs)
            except Exception as exc:
                self.abort(f"{what} failed: {type(exc).__name__}: {exc}")
        return listener

    def abort(self, reason):
        """Stop the run at once with ``reason`` as its one-line verdict; headless, quit with exit status 2."""
        log.error("%s; the run is stopped (no verdict)", reason)
        self.failed = reason
        self.verdict = Verdict(errors=[reason])
        self.env.process_exit_code = self.verdict.exit_code
        self.concluded.set()
        runner = self.env.runner
        gevent.spawn(runner.quit if self.options.headless else runner.stop)

    def report_dir(self, run_id):
        """Where this run's files go: --report-dir as given headless; else a folder of its own per run."""
        given, headless = self.options.report_dir, self.options.headless
        if headless and given:
            return Path(given)
        kind = "locust" if headless else "ui"
        return Path(given or ROOT / "reports") / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{run_id}"

    def on_test_start(self, **_):
        options = self.options
        self.failed, self.started = None, False
        # Workers receive parsed_options with their spawn message: this is how they learn the run id.
        options.run_id = self.new_run_id()
        self.client = self.client or connect(options.redis_url)
        wrong = identity.mismatch(self.env.host, self.client, options.redis_url)
        if wrong:  # a ledger from another formation's Redis would convict this one of losing every hit
            return self.abort(wrong)
        self.journal = Journal(options.run_id)
        report_dir = self.report_dir(options.run_id)
        report_dir.mkdir(parents=True, exist_ok=True)
        workloads = checked_workloads.parse(options.workload)
        self.run = Run(options.run_id, self.client, report_dir, self.journal, settings={
            "run": options.run_id, "host": self.env.host, "chaos_rate": options.chaos_rate,
            "chaos_mix": options.chaos_mix, "chaos_seed": options.chaos_seed, "users": self.users_asked(),
            "hits": options.hits,
            "workloads": list(workloads),
        }, workloads=workloads)
        self.verdict = None
        self.concluded.clear()
        self.collector = Collector(self.env.runner, self.journal)
        if self.collector.workers:
            self.run.journal_names = sorted(self.collector.workers)
        start_run(self.client, options.run_id, idempotency_ttl(os.environ))
        self.proxy_start = proxy_metrics(self.env.host)
        # Every run has an engine, so the Formation page's buttons are journaled; it schedules only with a rate.
        # Without a rate the mix is never drawn from (under --hosts it may name network actions, which the
        # agents in the machine's own namespace make): the buttons name their actions themselves. The schedule
        # runs apart, in a process of its own: among the users' greenlets its turns came late.
        mix = parse_mix(options.chaos_mix) if options.chaos_rate > 0 else DEFAULT_MIX
        self.chaos = ChaosMonkey(self.client, rate=options.chaos_rate, mix=mix, seed=options.chaos_seed,
                                 log_path=report_dir / CHAOS, proxy_url=self.env.host, apart_url=options.redis_url)
        if options.chaos_rate > 0:
            self.chaos.start()
        self.live = LiveView(self.run, self.env.runner)
        self.live.start()
        if self.duration:
            self.stopper = gevent.spawn(self.stop_after, self.duration)
        self.started = True  # every part of the run is in place: its engine takes buttons from now on
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
        bound = self.env.stop_timeout + self.options.journal_timeout + 60
        if not self.concluded.wait(bound):
            self.abort(f"no verdict within {bound:.0f}s of the stop (stop timeout, journal timeout and 60 s)")
            return
        if isinstance(runner, MasterRunner):
            # A worker reads "quit" only after its post-stop pause; were the master gone by then,
            # the worker would hang on its last send until the heartbeat gives up a minute later.
            deadline = time.monotonic() + self.env.stop_timeout + 10
            while len(runner.clients.ready) < len(self.collector.workers) and time.monotonic() < deadline:
                gevent.sleep(0.2)
        runner.quit()

    def on_test_stop(self, **_):
        self.started = False
        if self.live:
            self.live.stop()
        if self.chaos:
            self.chaos.stop()
        if not self.failed and self.run:  # Locust stops a runner that never started too, when it quits
            gevent.spawn(self.conclude)

    def proof(self, chaos_summary):
        return proof(self.env.runner.stats.total, self.options.min_success, self.run.settings["users"],
                     self.live.peak_users if self.live else 0, self.options.chaos_rate, chaos_summary)

    def conclude(self):
        try:
            missing = self.collector.wait(self.options.journal_timeout)
            write_jsonl(self.run.report_dir / FORMATION, self.live.formation)
            render.write_json(self.run.report_dir / PROXY_METRICS,
                              {"start": self.proxy_start, "end": proxy_metrics(self.env.host)})
            summary = self.chaos.summary() if self.chaos else None
            self.verdict = conclude(self.run, missing, self.proof(summary), summary)
        except Exception as exc:
            log.exception("the consistency check itself failed")
            self.verdict = Verdict(errors=[f"the check itself failed: {type(exc).__name__}: {exc}"])
        self.env.process_exit_code = self.verdict.exit_code
        self.concluded.set()
        if not self.options.headless:
            self.write_html_report()

    def write_html_report(self):
        """A web-UI run's report.html; scripts/check writes its own once the formation has stopped."""
        from bench.harness import report  # matplotlib: loaded only by the runs that draw

        try:
            path = gevent.get_hub().threadpool.apply(report.write, (self.run.report_dir,))
            log.info("factor6 report: %s", path)
        except Exception as exc:
            log.error("factor6: the HTML report could not be written: %s: %s", type(exc).__name__, exc)

    def rows(self):
        rows = webui.tab_rows(self.verdict, self.run.run_id if self.run else "", self.live.counts if self.live else None,
                              self.chaos, self.live.formation if self.live else None)
        if self.verdict is not None:  # after the verdict's row: what each workload's checker saw
            rows[1:1] = [{"what": f"workload {name}", "count": render.LABELS[part["status"]],
                          "detail": ", ".join(f"{k}: {v:,}" for k, v in part["counts"].items() if v)}
                         for name, part in self.verdict.stats.get("workloads", {}).items()]
        return rows

    def mark_html_report(self, **_):
        webui.mark_html_report(getattr(self.options, "html_file", None), self.verdict, self.run.run_id if self.run else "")


def proxy_metrics(host):
    """The proxy's ``/_proxy/metrics`` at ``host``; None when it is not a factor6 proxy or does not answer."""
    try:
        response = requests.get(f"{host}/_proxy/metrics", timeout=2)
        return response.json() if response.ok else None
    except (requests.RequestException, ValueError):
        return None


def journal_of(environment):
    return environment.factor6.journal


def refuse_bad_options(environment):
    """The command line's bad values end Locust at start-up, one line each, with exit status 2."""
    found = plugin_options.command_line_problems(environment.parsed_options) if environment.parsed_options else []
    for problem in found:
        sys.stderr.write(f"factor6: {problem}\n")
    if found:
        sys.exit(2)


def keep_workloads(environment):
    """Only the user classes of the workloads asked for; a name no checker knows stops Locust, with the list."""
    try:
        names = checked_workloads.parse(environment.parsed_options.workload)
    except ValueError as exc:
        raise SystemExit(f"--workload: {exc}") from None
    environment.user_classes = [c for c in environment.user_classes if getattr(c, "workload", None) in names]


def install(environment):
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        refuse_bad_options(environment)
    if environment.parsed_options:
        keep_workloads(environment)
    duration = plugin_options.take_run_time(environment.parsed_options) if not isinstance(runner, WorkerRunner) else None
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
            plugin_options.refuse_bad_starts(environment.web_ui)
            webui.refuse_taken_port(environment.web_ui)
            webui.answer_failed_starts(environment.web_ui, plugin)
            dashboard.install(environment.web_ui, plugin)
    environment.factor6 = plugin
    guard = plugin.guarded if isinstance(plugin, Conductor) else (lambda _what, handler: handler)
    environment.events.test_start.add_listener(guard("starting the run", plugin.on_test_start))
    environment.events.test_stop.add_listener(guard("stopping the run", plugin.on_test_stop))
