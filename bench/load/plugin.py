"""The consistency plugin for Locust: journals, their collection, the live view and the verdict.

    from bench.load import plugin

    @events.init.add_listener
    def install(environment, **_):
        plugin.install(environment)

Roles follow Locust's runners. A worker journals its users' hits and streams
them to the master (``collect.Streamer``); it learns each run's id from the
master's ``factor6_run`` message, sent before the users spawn. The master, or
a local runner, is the ``Conductor``: at each test start it makes a ``Run``
(bench/load/run.py), which merges the journals (``collect.Collector``), runs
the chaos monkey, watches the formation and checks live (``live``), and after
the test stops waits for every worker's complete journal (a missing one makes
the verdict unknown) and concludes (``conclude``). The Conductor shows the
latest run's verdict in the Consistency tab, on the console, in the ``--html``
report, in the run folder and as the exit code: 0 valid, 1 invalid, 2 unknown.

A stopped run is still judged: when Locust is told to quit (SIGTERM or SIGINT
to the master, which tells its workers) or the web UI's Stop is pressed, the
users get ``run.DRAIN_S`` seconds to finish their hit in flight, the run is
judged on what it made, and Locust exits with the verdict's status once it is
written (Locust's ``quitting`` event waits for it). Stopped so before the run
time it was given, the run is marked ``interrupted``.

Before a run is made, the formation must prove who it is: the instances
behind the host and the Redis of ``--redis-url`` must name one formation
(bench/load/identity.py); else ``Refused`` stops the run at once with NO
VERDICT and one line naming both. ``conductor.abort(reason)`` does the same at
any time.

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
import signal
import sys
import time
import uuid
from pathlib import Path

import gevent
from locust.runners import MasterRunner, WorkerRunner

from bench.load import dashboard, identity, shapes, webui
from bench.load import options as plugin_options
from bench.load.collect import JOURNAL, JOURNAL_COMPLETE, RUN_ID, Streamer
from bench.load.journal import Journal
from bench.load.run import Run
from bench.paths import ROOT
from bench.verdict import render
from bench.verdict import workloads as checked_workloads
from bench.verdict.model import Verdict
from common.redis_client import connect

log = logging.getLogger("factor6")


class Refused(Exception):
    """A start's reason to give no verdict at all (a wrong formation): the run is stopped at once, with it."""


class Conductor:
    """The master's (or local runner's) side: a ``Run`` per test start, the latest one kept for the views."""

    def __init__(self, environment, duration):
        self.env = environment
        self.duration = duration  # a headless run's -t, taken from Locust (options.take_run_time)
        self.runs = 0  # test starts so far, a refused one too
        self.client = None  # the formation's Redis, one client for every run
        self.run = None
        self.refusal = None  # the verdict of a start that failed before its run was made

    @property
    def options(self):
        return self.env.parsed_options

    @property
    def verdict(self):
        return self.run.verdict if self.run else self.refusal

    @property
    def chaos(self):
        """The latest run's chaos engine (the Formation page's buttons go through it), or None."""
        return self.run.chaos if self.run else None

    @property
    def live(self):
        return self.run.live if self.run else None

    @property
    def started(self):
        """The latest run is under way, every part of it in place."""
        return bool(self.run and self.run.started)

    @property
    def failed(self):
        """Why the latest start or run was stopped with no verdict (a handler failed, a check refused), or None."""
        return self.run.failed if self.run else (self.refusal.errors[0] if self.refusal else None)

    @property
    def journal(self):
        """Where a local runner's users write: the run's journal (a spare one while no run is made)."""
        return self.run.journal if self.run else Journal()

    def new_run_id(self):
        self.runs += 1
        given = self.options.run_id
        if not given:
            return f"r{uuid.uuid4().hex[:10]}"
        return given + (f".{self.runs}" if self.runs > 1 else "")

    def guarded(self, what, handler):
        """``handler`` as an event listener whose failure aborts the run (Locust's would only log it)."""
        def listener(**kwargs):
            try:
                return handler(**kwargs)
            except Exception as exc:
                self.abort(str(exc) if isinstance(exc, Refused) else f"{what} failed: {type(exc).__name__}: {exc}")
        return listener

    def abort(self, reason):
        """Stop the run at once with ``reason`` as its one-line verdict; headless, quit with exit status 2."""
        log.error("%s; the run is stopped (no verdict)", reason)
        if self.run is not None:
            self.run.fail(reason)
        else:
            self.refusal = Verdict(errors=[reason])
            self.env.process_exit_code = self.refusal.exit_code
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
        self.run, self.refusal = None, None
        run_id = self.new_run_id()
        self.client = self.client or connect(self.options.redis_url)
        wrong = identity.mismatch(self.env.host, self.client, self.options.redis_url)
        if wrong:  # a ledger from another formation's Redis would convict this one of losing every hit
            raise Refused(wrong)
        if isinstance(self.env.runner, MasterRunner):
            self.env.runner.send_message(RUN_ID, run_id)  # to every worker, before Locust's spawn message
        self.run = Run(self.env, run_id, self.client, self.report_dir(run_id), self.duration)
        self.run.start()
        if self.duration:
            gevent.spawn(self.stop_after, self.run, self.duration)
        log.info("factor6 run %s started: %s", run_id, self.run.report_dir)

    def on_journal(self, environment, msg, **_):
        if self.run:
            self.run.collector.on_journal(environment, msg)

    def on_journal_complete(self, environment, msg, **_):
        if self.run:
            self.run.collector.on_journal_complete(environment, msg)

    def stop_after(self, run, seconds):
        """A headless run's -t: stop the users at its time, then quit once the verdict is made."""
        gevent.sleep(seconds)
        if run is not self.run or run.stopped:
            return  # stopped before its time: Run.stopping and on_quitting see to the rest
        log.info("run time of %ss reached: stopping users, then checking", seconds)
        self.env.runner.stop()
        self.quit_when_concluded()

    def quit_when_concluded(self):
        runner, run = self.env.runner, self.run
        bound = self.conclusion_bound()
        if not run.concluded.wait(bound):
            self.abort(f"no verdict within {bound:.0f}s of the stop (stop timeout, journal timeout and 60 s)")
            return
        self.await_workers(run)
        runner.quit()

    def await_workers(self, run):
        """Before the master quits: a worker reads "quit" only after its post-stop pause; were the master
        gone by then, the worker would hang on its last send until the heartbeat gives up a minute later."""
        runner = self.env.runner
        if isinstance(runner, MasterRunner):
            deadline = time.monotonic() + self.env.stop_timeout + 10
            while len(runner.clients.ready) < len(run.collector.workers) and time.monotonic() < deadline:
                gevent.sleep(0.2)

    def conclusion_bound(self):
        return self.env.stop_timeout + self.options.journal_timeout + 60

    def on_test_stop(self, **_):
        if self.run and not self.run.stopped and self.run.on_test_stop():
            gevent.spawn(self.conclude, self.run)

    def conclude(self, run):
        run.conclude()
        if not self.options.headless:
            self.write_html_report(run)

    def on_quitting(self, **_):
        """Locust quits (a signal, the end of a headless run): conclude a run still going first (interrupted
        before its time), then put the verdict on the --html report."""
        run = self.run
        if run and not run.concluded.is_set():
            run.stopping("Locust was told to quit (SIGTERM or SIGINT)")
            self.env.runner.stop()  # Locust's own quit would stop the users, but leave no time to judge
            if not run.concluded.wait(self.conclusion_bound()):
                log.error("factor6: no verdict within %.0f s of the stop", self.conclusion_bound())
            self.await_workers(run)
        webui.mark_html_report(getattr(self.options, "html_file", None), self.verdict, run.run_id if run else "")

    def on_ui_stop(self):
        """The web UI's Stop: the users may finish their hits; before the run time it was given, the run is
        interrupted (and still judged)."""
        if self.run:
            self.run.stopping("stopped in the web UI")

    def rows(self):
        run, live = self.run, self.live
        rows = webui.tab_rows(self.verdict, run.run_id if run else "", live.counts if live else None, self.chaos,
                              live.formation if live else None, run.interrupted if run else None)
        if self.verdict is not None:  # after the verdict's row: what each workload's checker saw
            rows[1:1] = [{"what": f"workload {name}", "count": render.LABELS[part["status"]],
                          "detail": ", ".join(f"{k}: {v:,}" for k, v in part["counts"].items() if v)}
                         for name, part in self.verdict.stats.get("workloads", {}).items()]
        return rows

    def write_html_report(self, run):
        """A web-UI run's report.html; scripts/check writes its own once the formation has stopped."""
        from bench.harness import report  # matplotlib: loaded only by the runs that draw

        try:
            path = gevent.get_hub().threadpool.apply(report.write, (run.report_dir,))
            log.info("factor6 report: %s", path)
        except Exception as exc:
            log.error("factor6: the HTML report could not be written: %s: %s", type(exc).__name__, exc)


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


def interrupt_main_greenlet():
    """SIGINT's handler: Locust's main greenlet gets the KeyboardInterrupt it waits for (and quits as on Ctrl-C).
    Python's own handler raises it in whatever greenlet runs when the signal lands; in the live check's file
    write it was printed as a traceback, and once, on a loaded machine, lost, so the run went on to its end."""
    hub = gevent.get_hub()
    hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt)


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
        gevent.signal_handler(signal.SIGINT, interrupt_main_greenlet)
        environment.events.quitting.add_listener(plugin.on_quitting)
        if isinstance(runner, MasterRunner):
            runner.register_message(JOURNAL, plugin.on_journal)
            runner.register_message(JOURNAL_COMPLETE, plugin.on_journal_complete)
        if environment.web_ui:
            webui.install_tab(environment.web_ui, plugin.rows, plugin.on_ui_stop)
            plugin_options.refuse_bad_starts(environment.web_ui)
            webui.refuse_taken_port(environment.web_ui)
            webui.answer_failed_starts(environment.web_ui, plugin)
            dashboard.install(environment.web_ui, plugin)
    environment.factor6 = plugin
    guard = plugin.guarded if isinstance(plugin, Conductor) else (lambda _what, handler: handler)
    environment.events.test_start.add_listener(guard("starting the run", plugin.on_test_start))
    environment.events.test_stop.add_listener(guard("stopping the run", plugin.on_test_stop))
