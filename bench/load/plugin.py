"""The consistency plugin for Locust: journals, their collection, and the verdict where people look.

    from bench import consistency

    @events.init.add_listener
    def install(environment, **_):
        consistency.install(environment)

Roles follow Locust's runners:

- A worker journals its users' hits and streams the new events to the master
  every second; once its users have stopped it sends the rest and a
  ``journal_complete`` message with its total.
- The master, or a local runner, merges the journals, checks them live against
  the Redis ledger, runs the chaos monkey, samples the formation, and after the
  test concludes: it waits for every worker's complete journal (a missing one
  fails the run), checks, and shows the verdict in the Consistency tab, on the
  console, in the ``--html`` report, in ``<report-dir>/verdict.json`` and as a
  non-zero exit code when invalid (never a zero one: that would hide failures).

Locust's ``-t`` timer quits the master before the workers have even stopped, so
in headless runs this plugin takes the run time over and drives the stop itself.
"""
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path

import gevent
import gevent.event
from locust.runners import MasterRunner, WorkerRunner

from bench import checker
from bench.chaos import ChaosMonkey, parse_mix
from bench.check import Source, read_redis, render, seal_run, start_run
from web.config import idempotency_ttl
from web.formation import live_instances
from web.redis_client import connect

log = logging.getLogger("factor6")
STREAM_EVERY = 1.0
LIVE_CHECK_EVERY = 3.0
SAMPLE_EVERY = 1.0
SHOWN = 10  # offending items listed per category in the tab
FOLLOW_UPS = ("recovery", "thaw")  # chaos events that report on an action rather than act


class Journal:
    """One Locust process's record of the hits it attempted, in the checker's event format."""

    def __init__(self, run_id=""):
        self.run_id = run_id
        # Made per run, not at import: --processes forks workers after the locustfile is imported.
        self.tag = uuid.uuid4().hex[:8]
        self.events = []
        self.sent = 0  # events already streamed to the master
        self._lock = threading.Lock()

    def _add(self, event):
        with self._lock:
            self.events.append(event)

    def invoke(self, key):
        self._add({"type": "invoke", "key": key, "time": time.time()})

    def complete(self, key, kind, number=None):
        event = {"type": kind, "key": key, "time": time.time()}
        if number is not None:
            event["number"] = number
        self._add(event)

    def unsent(self):
        with self._lock:
            chunk, self.sent = self.events[self.sent:], len(self.events)
        return chunk


def journal_of(environment):
    return environment.factor6.journal


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row) + "\n")


class Conductor:
    """The master's (or local runner's) side of one run: start, live view, conclusion."""

    def __init__(self, environment):
        self.env = environment
        self.journal = Journal()  # a local runner's users write here; a master merges into it
        self.workers = set()  # worker ids expected to send a journal
        self.completed = {}  # worker id -> events it says it sent
        self.received = {}  # worker id -> events received
        self.chaos = None
        self.formation = []
        self.live = {}
        self.verdict = None
        self.greenlets = []
        self.concluded = gevent.event.Event()
        self.runs = 0
        options = environment.parsed_options
        self.given_run_id = options.run_id if options else ""
        self.duration = None
        if options and options.headless and options.run_time:
            self.duration, options.run_time = options.run_time, None

    @property
    def options(self):
        return self.env.parsed_options

    @property
    def report_dir(self):
        return Path(self.options.report_dir)

    def redis(self):
        return connect(self.options.redis_url)

    # -- start ---------------------------------------------------------------
    def on_test_start(self, **_):
        options = self.options
        self.runs += 1
        # Workers receive the run id with their spawn message; a second run in the UI needs a new one.
        options.run_id = self.given_run_id or f"r{uuid.uuid4().hex[:10]}"
        if self.given_run_id and self.runs > 1:
            options.run_id += f".{self.runs}"
        self.journal = Journal(options.run_id)
        self.verdict, self.live, self.formation = None, {}, []
        self.concluded.clear()
        self.completed, self.received = {}, {}
        runner = self.env.runner
        self.workers = {client.id for client in runner.clients.all} if isinstance(runner, MasterRunner) else set()
        client = self.redis()
        start_run(client, options.run_id, idempotency_ttl(os.environ))
        self.report_dir.mkdir(parents=True, exist_ok=True)
        if options.chaos_rate > 0:
            self.chaos = ChaosMonkey(client, rate=options.chaos_rate, mix=parse_mix(options.chaos_mix),
                                     seed=options.chaos_seed, log_path=self.report_dir / "chaos.jsonl")
            self.chaos.start()
        self.greenlets = [gevent.spawn(self.sample_formation), gevent.spawn(self.check_live)]
        if self.duration:
            self.greenlets.append(gevent.spawn(self.stop_after, self.duration))
        log.info("factor6 run %s started: %s", options.run_id, self.report_dir)

    # -- while running -------------------------------------------------------
    def on_journal(self, environment, msg, **_):
        self.journal.events.extend(msg.data)
        self.received[msg.node_id] = self.received.get(msg.node_id, 0) + len(msg.data)

    def on_journal_complete(self, environment, msg, **_):
        self.completed[msg.node_id] = msg.data["events"]

    def sample_formation(self):
        client = self.redis()
        while True:
            try:
                instances = live_instances(client)
                self.formation.append({"time": time.time(), "instances": len(instances),
                                       "workers": sum(len(i.workers) for i in instances),
                                       "names": sorted(i.name for i in instances)})
            except Exception as exc:  # the formation may be mid-chaos; keep sampling
                log.debug("formation sample failed: %s", exc)
            gevent.sleep(SAMPLE_EVERY)

    def snapshot(self, as_of=None):
        """Check the journal so far against one consistent read of the ledger and counter."""
        events = list(self.journal.events)
        as_of = time.time() if as_of is None else as_of
        source = Source(run=self.options.run_id)
        ledger, start, end = read_redis(source, self.options.redis_url)
        ledger = list(ledger)
        # The pure check is CPU-bound: a native thread keeps users' greenlets running meanwhile.
        verdict = gevent.get_hub().threadpool.apply(checker.check, (events, ledger, start, end), {"as_of": as_of})
        return source, verdict

    def check_live(self):
        pause = LIVE_CHECK_EVERY
        while True:
            gevent.sleep(pause)
            try:
                began = time.monotonic()
                _, verdict = self.snapshot()
                # Each check reads the whole journal so far: space them out as it grows, so the
                # live view never takes more than a fifth of the CPU the users need.
                pause = max(LIVE_CHECK_EVERY, 4 * (time.monotonic() - began))
                # Mid-run only lost and duplicated are final: a ledger entry may arrive before its
                # journal line, so unexpected and gaps wait for the conclusion.
                self.live = {"lost": len(verdict.lost), "duplicated": len(verdict.duplicated), "ok": verdict.ok,
                             "rps": self.env.runner.stats.total.current_rps, "time": time.time(),
                             "items": verdict.lost[:SHOWN] + verdict.duplicated[:SHOWN]}
                (self.report_dir / "live.json").write_text(json.dumps(self.live))
            except Exception as exc:
                log.warning("live check failed: %s", exc)

    # -- stop and conclusion -------------------------------------------------
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
            while len(runner.clients.ready) < len(self.workers) and time.monotonic() < deadline:
                gevent.sleep(0.2)
        runner.quit()

    def on_test_stop(self, **_):
        for greenlet in self.greenlets:
            if greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)
        if self.chaos:
            self.chaos.stop()
        gevent.spawn(self.conclude)

    def wait_for_journals(self):
        deadline = time.monotonic() + self.options.journal_timeout
        while time.monotonic() < deadline:
            if all(self.completed.get(w) is not None and self.received.get(w, 0) >= self.completed[w]
                   for w in self.workers):
                return []
            gevent.sleep(0.1)
        return sorted(w for w in self.workers
                      if self.completed.get(w) is None or self.received.get(w, 0) < self.completed[w])

    def conclude(self):
        try:
            missing = self.wait_for_journals()
            source, verdict = self.snapshot(as_of=None)
            source.events = len(self.journal.events)
            source.journals = sorted(self.workers) or ["this process"]
            source.errors += [f"journal of worker {w} incomplete or missing" for w in missing]
            if not self.journal.events:
                source.errors.append(f"no hit was journaled for run {self.options.run_id}")
            if verdict.stats["counter_end"] is not None:
                seal_run(self.redis(), self.options.run_id, verdict.stats["counter_end"], source.ledger_length)
            trusted = not source.errors and not verdict.errors
            status = (0 if verdict.valid else 1) if trusted else 2
            self.verdict = {"run": self.options.run_id, "status": status, "valid": status == 0,
                            "source": vars(source), **{k: v for k, v in verdict.to_dict().items() if k != "valid"},
                            "chaos": self.chaos.summary() if self.chaos else None}
            self.write_artifacts()
            table = render(source, verdict, status)
            (self.report_dir / "verdict.txt").write_text(table + "\n")
            print(table, flush=True)
            if status:
                self.env.process_exit_code = status
        except Exception:
            log.exception("the consistency check itself failed")
            self.verdict = {"run": self.options.run_id, "status": 2, "valid": False, "error": "check failed"}
            self.env.process_exit_code = 2
        finally:
            self.concluded.set()

    def write_artifacts(self):
        out = self.report_dir
        (out / "verdict.json").write_text(json.dumps(self.verdict, indent=1) + "\n")
        write_jsonl(out / "journal.jsonl", self.journal.events)
        write_jsonl(out / "formation.jsonl", self.formation)
        (out / "run.json").write_text(json.dumps({
            "run": self.options.run_id, "host": self.env.host, "chaos_rate": self.options.chaos_rate,
            "chaos_mix": self.options.chaos_mix, "chaos_seed": self.options.chaos_seed,
        }) + "\n")

    # -- where people look -----------------------------------------------------
    def rows(self):
        """The Consistency tab's table."""
        rows = []
        if self.verdict:
            state = {0: "VALID", 1: "INVALID", 2: "NO VERDICT"}[self.verdict["status"]]
            rows.append({"what": "verdict", "count": state, "detail": f"run {self.verdict['run']}"})
            for name in ("ok", *checker.CATEGORIES):
                value = self.verdict.get(name, 0)
                items = value if isinstance(value, list) else []
                rows.append({"what": name, "count": len(items) if isinstance(value, list) else value,
                             "detail": "; ".join(json.dumps(i) for i in items[:SHOWN])})
            for error in self.verdict.get("source", {}).get("errors", []):
                rows.append({"what": "error", "count": "", "detail": error})
        elif self.live:
            rows.append({"what": "verdict", "count": "running", "detail": "final verdict after stop"})
            for name in ("ok", "lost", "duplicated"):
                rows.append({"what": f"{name} so far", "count": self.live[name], "detail": ""})
            rows.append({"what": "offending", "count": len(self.live["items"]),
                         "detail": "; ".join(json.dumps(i) for i in self.live["items"])})
        if self.chaos:
            summary = self.chaos.summary()
            for action, outcomes in summary["actions"].items():
                if action in FOLLOW_UPS:
                    continue
                recovery = summary["recovery"].get(action)
                detail = f"median recovery {recovery['median_s']:.3f}s, worst {recovery['max_s']:.3f}s" if recovery else ""
                rows.append({"what": f"chaos {action}", "count": sum(outcomes.values()),
                             "detail": ", ".join(f"{k}: {v}" for k, v in outcomes.items()) + ("; " + detail if detail else "")})
            for event in self.chaos.events[-5:]:
                rows.append({"what": "chaos event", "count": event.get("action"), "detail": json.dumps(event)})
        if self.formation:
            last = self.formation[-1]
            rows.append({"what": "instances", "count": last["instances"], "detail": ", ".join(last["names"])})
        return rows

    def install_web_ui(self, web_ui):
        web_ui.template_args.update(
            extended_tabs=[{"title": "Consistency", "key": "consistency"}],
            extended_tables=[{"key": "consistency", "structure": [
                {"key": "what", "title": "What"}, {"key": "count", "title": "Count"},
                {"key": "detail", "title": "Detail"}]}],
        )

        @web_ui.app.after_request
        def add_consistency(response):
            from flask import request

            if request.path == "/stats/requests" and response.is_json:
                data = response.get_json()
                data["extended_stats"] = [{"key": "consistency", "data": self.rows()}]
                response.set_data(json.dumps(data))
            return response

    def mark_html_report(self, **_):
        """Put the verdict at the top of Locust's own --html report, which is written before quitting."""
        html_file = getattr(self.options, "html_file", None)
        if not (html_file and self.verdict and os.path.exists(html_file)):
            return
        state = "VALID" if self.verdict["valid"] else "INVALID"
        counts = ", ".join(f"{name}: {len(self.verdict.get(name) or [])}" for name in checker.CATEGORIES)
        banner = (f'<div style="font:16px sans-serif;padding:12px;background:{"#d4f7d4" if self.verdict["valid"] else "#f7d4d4"}">'
                  f'<b>factor6 consistency: {state}</b> (run {self.verdict["run"]}; ok: {self.verdict.get("ok", 0)}, {counts})'
                  f' &mdash; details in verdict.json and report.html</div>')
        text = Path(html_file).read_text(encoding="utf-8")
        Path(html_file).write_text(text.replace("<body>", "<body>" + banner, 1), encoding="utf-8")


class Streamer:
    """A worker's side of one run: journal its users' hits and stream them to the master."""

    def __init__(self, environment):
        self.env = environment
        self.journal = Journal()
        self.greenlet = None

    def on_test_start(self, **_):
        self.journal = Journal(self.env.parsed_options.run_id)  # the master set it before spawning us
        self.greenlet = gevent.spawn(self.stream)

    def stream(self):
        while True:
            gevent.sleep(STREAM_EVERY)
            self.send(self.journal.unsent())

    def send(self, chunk):
        if chunk:
            self.env.runner.send_message("journal", chunk)

    def on_test_stop(self, **_):
        if self.greenlet:
            self.greenlet.kill()
        self.send(self.journal.unsent())
        # Messages to the master keep their order, so this arrives after every chunk.
        self.env.runner.send_message("journal_complete", {"events": len(self.journal.events)})


def install(environment):
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        plugin = Streamer(environment)
    else:
        plugin = Conductor(environment)
        environment.events.quitting.add_listener(plugin.mark_html_report)
        if isinstance(runner, MasterRunner):
            runner.register_message("journal", plugin.on_journal)
            runner.register_message("journal_complete", plugin.on_journal_complete)
        if environment.web_ui:
            plugin.install_web_ui(environment.web_ui)
    environment.factor6 = plugin
    environment.events.test_start.add_listener(plugin.on_test_start)
    environment.events.test_stop.add_listener(plugin.on_test_stop)
