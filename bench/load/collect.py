"""Journals on the move: a worker streams its journal to the master, which knows when every one is whole.

    streamer = Streamer(environment)                 # on a worker: registers RUN_ID and STOPPING
    collector = Collector(runner, journal)           # on the master, per run
    runner.register_message(JOURNAL, collector.on_journal)
    runner.register_message(JOURNAL_COMPLETE, collector.on_journal_complete)
    missing = collector.wait(timeout=30)             # workers whose journal did not arrive whole

The messages between master and workers, each in one direction. The master
sends ``RUN_ID`` (the run's id, before Locust's spawn message: a worker
journals under it from then on) and, for a run interrupted before its time,
``STOPPING`` (the seconds the users may take to finish their hit in flight,
before Locust's stop). A worker sends its new events every second
(``JOURNAL``) and, once its users have stopped, the rest and
``JOURNAL_COMPLETE`` with its total; messages keep their order, so the total
arrives after every chunk.
"""
import time

import gevent
from locust.runners import MasterRunner

from bench.load.journal import Journal

STREAM_EVERY = 1.0
RUN_ID, STOPPING = "factor6_run", "factor6_stopping"  # master -> workers
JOURNAL, JOURNAL_COMPLETE = "journal", "journal_complete"  # worker -> master


class Collector:
    """The master's side: merge each worker's chunks into one journal and account for each worker."""

    def __init__(self, runner, journal):
        self.journal = journal
        self.workers = {client.id for client in runner.clients.all} if isinstance(runner, MasterRunner) else set()
        self.completed = {}  # worker id -> events it says it sent
        self.received = {}  # worker id -> events received

    def on_journal(self, environment, msg, **_):
        self.journal.extend(msg.data)
        self.received[msg.node_id] = self.received.get(msg.node_id, 0) + len(msg.data)

    def on_journal_complete(self, environment, msg, **_):
        self.completed[msg.node_id] = msg.data["events"]

    def incomplete(self):
        return sorted(w for w in self.workers
                      if self.completed.get(w) is None or self.received.get(w, 0) < self.completed[w])

    def wait(self, timeout):
        """The workers whose journal is still incomplete after at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.incomplete() and time.monotonic() < deadline:
            gevent.sleep(0.1)
        return self.incomplete()


class Streamer:
    """A worker's side of one run: journal its users' hits and stream them to the master."""

    def __init__(self, environment):
        self.env = environment
        self.journal = Journal()
        self.greenlet = None
        environment.runner.register_message(RUN_ID, self.on_run_id)
        environment.runner.register_message(STOPPING, self.on_stopping)

    def on_run_id(self, environment, msg, **_):
        self.journal = Journal(msg.data)  # before the spawn message, so before any user of the run

    def on_stopping(self, environment, msg, **_):
        environment.stop_timeout = max(environment.stop_timeout or 0, msg.data)

    def on_test_start(self, **_):
        self.greenlet = gevent.spawn(self.stream)

    def stream(self):
        while True:
            gevent.sleep(STREAM_EVERY)
            self.send(self.journal.unsent())

    def send(self, chunk):
        if chunk:
            self.env.runner.send_message(JOURNAL, chunk)

    def on_test_stop(self, **_):
        if self.greenlet:
            self.greenlet.kill()
        self.send(self.journal.unsent())
        self.env.runner.send_message(JOURNAL_COMPLETE, {"events": len(self.journal.events)})
