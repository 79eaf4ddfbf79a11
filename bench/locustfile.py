"""Locust load for factor6: every user makes exactly-once hits through the proxy and journals them.

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
"""
import itertools

from locust import FastHttpUser, constant, events, task
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from bench.load import options, plugin

HIT = "POST /hits"
RETRY = "POST /hits (retry)"


class Retryable(Exception):
    """The outcome of this try is unknown or transient: try again with the same key."""


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    options.add_arguments(parser)


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
        journal.invoke(key)
        try:
            for attempt in self.retrying:
                with attempt:
                    number = self.try_hit(key, attempt.retry_state.attempt_number)
        except Retryable:
            journal.complete(key, "info")
        else:
            journal.complete(key, "ok" if number is not None else "fail", number)

    def try_hit(self, key, attempt):
        """The acknowledged number, None when refused for good; Retryable when unknown."""
        headers = {} if self.environment.parsed_options.keyless else {"Idempotency-Key": key}
        with self.client.post("/hits", headers=headers, name=HIT if attempt == 1 else RETRY,
                              catch_response=True) as response:
            status = response.status_code or 0
            if status == 200:
                try:
                    return int(response.json()["hits"])
                except (ValueError, KeyError, TypeError):
                    response.failure("200 without a hit count")
                    raise Retryable() from None
            response.failure(f"{status or 'no response'}: {(response.text or str(response.error))[:80]}")
            # 4xx means the request itself was refused, so nothing was applied; 408/429 are transient.
            if 400 <= status < 500 and status not in (408, 429):
                return None
            raise Retryable()
