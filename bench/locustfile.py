"""Locust load for factor6: every user makes exactly-once requests through the proxy and journals them.

    $ locust -f bench/locustfile.py --headless -u 20 -r 20 -t 60s \\
          --host http://127.0.0.1:8000 --report-dir reports/run1 --chaos-rate 1

Each logical hit is one ``POST /hits`` with a fresh ``Idempotency-Key``
(``<run>:<process>.<user>:<seq>``). A connection error or a 5xx is retried
with the same key after a jittered back-off, so a retry can never count twice;
retries show in Locust's statistics under their own name (``--keyless``
sends hits and retries with no key: wrong on purpose, a negative control;
the journal still names each hit). The invoke is
journaled before the request is sent, so a user killed mid-request leaves an
``info`` (unknown) operation, never a silent gap. The consistency plugin
(bench/load/plugin.py) turns the journals into the verdict.

``--workload hits,session,upload`` picks the user classes: HitUser here,
VisitorUser (bench/load/visitors.py) and UploadUser (bench/load/uploaders.py);
each journals typed events for its workload's checker (bench/verdict/workloads.py).
"""
import itertools

from locust import FastHttpUser, constant, events, task

from bench.load import options, plugin
from bench.load.tries import Retryable, call, retrying
from bench.load.uploaders import UploadUser  # noqa: F401 - Locust finds user classes in this module
from bench.load.visitors import VisitorUser  # noqa: F401

HIT = "POST /hits"  # its retries are "POST /hits (retry)"


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    options.add_arguments(parser)


@events.init.add_listener
def install(environment, **_):
    plugin.install(environment)


class HitUser(FastHttpUser):
    workload = "hits"
    wait_time = constant(0.01)
    _user_numbers = itertools.count(1)

    def on_start(self):
        self.sequence = itertools.count(1)
        self.number = next(self._user_numbers)
        self.retrying = retrying(self.environment.parsed_options)

    @task
    def hit(self):
        journal = plugin.journal_of(self.environment)
        key = journal.key(self.number, next(self.sequence))
        journal.invoke(key)
        try:
            # --keyless: no key on the request or its retries (wrong on purpose); the journal still names the hit.
            answer = call(self, "POST", "/hits", HIT, key=None if self.environment.parsed_options.keyless else key,
                          expect=lambda data: type(data.get("hits")) is int)
        except Retryable:
            journal.complete(key, "info")
        else:
            # A 4xx means the request itself was refused, so nothing was applied.
            journal.complete(key, "ok" if answer.ok else "fail", answer.data["hits"] if answer.ok else None)
