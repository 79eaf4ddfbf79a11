"""Locust load for factor6: every user makes exactly-once hits through the proxy and journals them.

    $ locust -f bench/locustfile.py --headless -u 20 -r 20 -t 60s \\
          --host http://127.0.0.1:8000 --report-dir reports/run1 --chaos-rate 1

Each logical hit is one ``POST /hits`` with a fresh ``Idempotency-Key``
(``<run>:<process>.<user>:<seq>``). A connection error or a 5xx is retried
with the same key after a jittered back-off, so a retry can never count twice;
retries show in Locust's statistics under their own name. ``--hits keyless``
sends ``POST /hits`` without a key and ``--hits page`` the seed's ``GET /``,
each tried once, as a client without keys must: they have no ledger entry,
so the checker judges them by their numbers and the counter. The invoke is
journaled before the request is sent, so a user killed mid-request leaves an
``info`` (unknown) operation, never a silent gap. The consistency plugin
(bench/load/plugin.py) turns the journals into the verdict.
"""
import itertools
import os
import re

from locust import FastHttpUser, constant, events, task
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from bench.load import plugin, shapes
from web.config import redis_url

HIT = "POST /hits"
RETRY = "POST /hits (retry)"
KEYLESS = "POST /hits (keyless)"
PAGE = "GET /"
HIT_KINDS = ("keyed", "keyless", "page")
PAGE_TEXT = re.compile(r"Hello World! (\d+) times\.\s*")


class Retryable(Exception):
    """The outcome of this try is unknown or transient: try again with the same key."""


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    # Locust's own parser, not an argument group: only it knows include_in_web_ui.
    parser.add_argument("--run-id", default="", help="prefix of every key; generated when empty")
    parser.add_argument("--report-dir", default="reports/latest", help="where the journal and verdict go")
    parser.add_argument("--redis-url", default=redis_url(os.environ), include_in_web_ui=False,
                       help="the formation's Redis, read for the ledger (not for hits)")
    parser.add_argument("--hits", choices=HIT_KINDS, default="keyed",
                        help="keyed: POST /hits with a key, retried; keyless: without one; page: the seed's GET /")
    parser.add_argument("--hit-tries", type=int, default=8, help="tries per hit before its outcome is unknown")
    parser.add_argument("--chaos-rate", type=float, default=0.0, help="chaos actions per second (0: off)")
    parser.add_argument("--chaos-mix", default="kill,term,reload,freeze", help="actions, optionally weighted")
    parser.add_argument("--chaos-seed", type=int, default=1, help="seed of the chaos schedule")
    parser.add_argument("--journal-timeout", type=float, default=30.0, include_in_web_ui=False,
                       help="seconds the master waits for every worker's journal")
    parser.add_argument("--min-success", type=float, default=0.5, include_in_web_ui=False,
                       help="least share of tries that must succeed, else the run proved nothing (unknown)")
    shapes.add_arguments(parser)


@events.init.add_listener
def install(environment, **_):
    plugin.install(environment)


class HitUser(FastHttpUser):
    wait_time = constant(0.01)
    _user_numbers = itertools.count(1)

    def on_start(self):
        self.sequence = itertools.count(1)
        self.number = next(self._user_numbers)
        options = self.environment.parsed_options
        self.retrying = Retrying(
            stop=stop_after_attempt(options.hit_tries),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        )

    @task
    def hit(self):
        journal = plugin.journal_of(self.environment)
        key = journal.key(self.number, next(self.sequence))
        keyless = self.environment.parsed_options.hits != "keyed"
        journal.invoke(key, keyless=keyless)
        try:
            if keyless:
                number = self.try_keyless()
            else:
                for attempt in self.retrying:
                    with attempt:
                        number = self.try_hit(key, attempt.retry_state.attempt_number)
        except Retryable:
            journal.complete(key, "info")
        else:
            journal.complete(key, "ok" if number is not None else "fail", number)

    def try_hit(self, key, attempt):
        """The acknowledged number, None when refused for good; Retryable when unknown."""
        headers = {"Idempotency-Key": key}
        with self.client.post("/hits", headers=headers, name=HIT if attempt == 1 else RETRY,
                              catch_response=True) as response:
            return number_from(response, lambda r: int(r.json()["hits"]))

    def try_keyless(self):
        """One try without a key: a retry could count the hit twice, and only the server could tell."""
        if self.environment.parsed_options.hits == "page":
            with self.client.get("/", name=PAGE, catch_response=True) as response:
                return number_from(response, lambda r: int(PAGE_TEXT.fullmatch(r.text).group(1)))
        with self.client.post("/hits", name=KEYLESS, catch_response=True) as response:
            return number_from(response, lambda r: int(r.json()["hits"]))


def number_from(response, parse):
    """The number a 200 acknowledged (``parse`` reads it); None when refused for good; Retryable when unknown."""
    status = response.status_code or 0
    if status == 200:
        try:
            return parse(response)
        except (ValueError, KeyError, TypeError, AttributeError):
            response.failure("200 without a hit count")
            raise Retryable() from None
    response.failure(f"{status or 'no response'}: {(response.text or str(response.error))[:80]}")
    # 4xx means the request itself was refused, so nothing was applied; 408/429 are transient.
    if 400 <= status < 500 and status not in (408, 429):
        return None
    raise Retryable()
