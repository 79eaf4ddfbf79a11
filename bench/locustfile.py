"""Locust load for factor6: every user makes exactly-once requests through the proxy and journals them.

    $ locust -f bench/locustfile.py --headless -u 20 -r 20 -t 60s \\
          --host http://127.0.0.1:8000 --report-dir reports/run1 --chaos-rate 1

Each logical hit is one ``POST /hits`` with a fresh ``Idempotency-Key``
(``<run>:<process>.<user>:<seq>``). A connection error or a 5xx is retried
with the same key after a jittered back-off (or the answer's ``Retry-After``),
for up to ``--hit-budget`` seconds, so a retry can never count twice;
retries show in Locust's statistics under their own name. ``--hits keyless``
sends ``POST /hits`` without a key and ``--hits page`` the seed's ``GET /``,
each tried once, as a client without keys must; ``--hits keyless-retried``
retries them anyway (wrong on purpose, a negative control: a retry may count
twice). Keyless hits have no ledger entry, so the checker judges them by their
numbers and the counter; the journal still names each one. The invoke is
journaled before the request is sent, so a user killed mid-request leaves an
``info`` (unknown) operation, never a silent gap. The consistency plugin
(bench/load/plugin.py) turns the journals into the verdict.

``--workload hits,session,upload`` picks the user classes: HitUser here,
VisitorUser (bench/load/visitors.py) and UploadUser (bench/load/uploaders.py);
each journals typed events for its workload's checker (bench/verdict/workloads.py).
"""
import re

from locust import constant, events, task

from bench.load import options, plugin
from bench.load.tries import Retryable, call
from bench.load.users import JournaledUser
from bench.load.uploaders import UploadUser  # noqa: F401 - Locust finds user classes in this module
from bench.load.visitors import VisitorUser  # noqa: F401

HIT = "POST /hits"  # its retries are "POST /hits (retry)"
KEYLESS = "POST /hits (keyless)"
PAGE = "GET /"
PAGE_TEXT = re.compile(r"Hello World! (\d+) times\.\s*")


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    options.add_arguments(parser)


@events.init.add_listener
def install(environment, **_):
    plugin.install(environment)


class HitUser(JournaledUser):
    workload = "hits"
    wait_time = constant(0.01)

    def on_start(self):
        self.hits = self.environment.parsed_options.hits
        # Only a keyed hit is safe to send again; keyless-retried does it anyway, on purpose.
        self.tries = 1 if self.hits in ("keyless", "page") else None
        super().on_start()
        self.request = {"keyed": ("POST", "/hits", HIT), "keyless": ("POST", "/hits", KEYLESS),
                        "keyless-retried": ("POST", "/hits", KEYLESS), "page": ("GET", "/", PAGE)}[self.hits]
        self.expect = None if self.hits == "page" else (lambda data: type(data.get("hits")) is int)

    @task
    def hit(self):
        journal, key = self.journal, self.next_key()
        keyless = self.hits != "keyed"
        journal.invoke(key, keyless=keyless)
        try:
            answer = call(self, *self.request, key=None if keyless else key, expect=self.expect)
            number = self.number_in(answer) if answer.ok else None
        except Retryable:
            journal.complete(key, "info")
        else:
            # A 4xx means the request itself was refused, so nothing was applied.
            journal.complete(key, "ok" if answer.ok else "fail", number, tries=answer.tries)

    def number_in(self, answer):
        """The number a 2xx acknowledged: in the JSON, or in the seed's page."""
        if self.hits != "page":
            return answer.data["hits"]
        match = PAGE_TEXT.fullmatch(answer.text)
        if match is None:
            raise Retryable()  # a 200 that names no number: its outcome is unknown
        return int(match.group(1))
