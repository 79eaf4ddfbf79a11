"""Locust load for factor6: every user makes exactly-once requests through the proxy and journals them.

    $ locust -f bench/locustfile.py --headless -u 20 -r 20 -t 60s \\
          --host http://127.0.0.1:8000 --report-dir reports/run1 --chaos-rate 1

Each logical hit is one ``POST /hits`` with a fresh ``Idempotency-Key``
(``<run>:<process>.<user>:<seq>``). A connection error or a 5xx is retried
with the same key after a jittered back-off, so a retry can never count twice;
retries show in Locust's statistics under their own name. The invoke is
journaled before the request is sent, so a user killed mid-request leaves an
``info`` (unknown) operation, never a silent gap. The consistency plugin
(bench/load/plugin.py) turns the journals into the verdict.

``--workload hits,session,upload`` picks the user classes: HitUser here,
VisitorUser (bench/load/visitors.py) and UploadUser (bench/load/uploaders.py);
each journals typed events for its workload's checker (bench/verdict/workloads.py).
"""
import itertools
import os

from locust import FastHttpUser, constant, events, task

from bench.load import plugin, shapes
from bench.load.tries import Retryable, call, retrying
from bench.load.uploaders import UploadUser  # noqa: F401 - Locust finds user classes in this module
from bench.load.visitors import VisitorUser  # noqa: F401
from bench.verdict.workloads import WORKLOADS
from web.config import redis_url

HIT = "POST /hits"  # its retries are "POST /hits (retry)"


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    # Locust's own parser, not an argument group: only it knows include_in_web_ui.
    parser.add_argument("--run-id", default="", help="prefix of every key; generated when empty")
    parser.add_argument("--report-dir", default="reports/latest", help="where the journal and verdict go")
    parser.add_argument("--redis-url", default=redis_url(os.environ), include_in_web_ui=False,
                       help="the formation's Redis, read for the ledger (not for hits)")
    parser.add_argument("--hit-tries", type=int, default=8, help="tries per hit before its outcome is unknown")
    parser.add_argument("--chaos-rate", type=float, default=0.0, help="chaos actions per second (0: off)")
    parser.add_argument("--chaos-mix", default="kill,term,reload,freeze", help="actions, optionally weighted")
    parser.add_argument("--chaos-seed", type=int, default=1, help="seed of the chaos schedule")
    parser.add_argument("--journal-timeout", type=float, default=30.0, include_in_web_ui=False,
                       help="seconds the master waits for every worker's journal")
    parser.add_argument("--min-success", type=float, default=0.5, include_in_web_ui=False,
                       help="least share of tries that must succeed, else the run proved nothing (unknown)")
    parser.add_argument("--workload", default="hits", include_in_web_ui=False,
                       help=f"comma-separated workloads, each with its user class and checker: {', '.join(WORKLOADS)}")
    parser.add_argument("--upload-size", default="1M", help="bytes per upload of the upload workload: 1048576, 512K, 10M")
    shapes.add_arguments(parser)


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
            answer = call(self, "POST", "/hits", HIT, key=key, expect=lambda data: type(data.get("hits")) is int)
        except Retryable:
            journal.complete(key, "info")
        else:
            # A 4xx means the request itself was refused, so nothing was applied.
            journal.complete(key, "ok" if answer.ok else "fail", answer.data["hits"] if answer.ok else None)
