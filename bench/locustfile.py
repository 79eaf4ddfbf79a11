"""Locust load for factor6: every user makes exactly-once hits through the proxy and journals them.

    $ locust -f bench/locustfile.py --headless -u 20 -r 20 -t 60s \\
          --host http://127.0.0.1:8000 --report-dir reports/run1 --chaos-rate 1

Each logical hit is one ``POST /hits`` with a fresh ``Idempotency-Key``
(``<run>:<process>.<user>:<seq>``). A connection error or a 5xx is retried
with the same key after a jittered back-off, or after the response's
``Retry-After`` when that is longer (web's 503 while Redis is away says 1 s), so
a retry can never count twice; a hit is retried until ``--hit-budget`` seconds
have gone by since its first try (or ``--hit-tries`` tries), so an outage of a
few seconds costs no hit. Retries show in Locust's statistics under their own name. The invoke is
journaled before the request is sent, so a user killed mid-request leaves an
``info`` (unknown) operation, never a silent gap. The consistency plugin
(bench/load/plugin.py) turns the journals into the verdict.
"""
import itertools
import os

from locust import FastHttpUser, constant, events, task
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay, wait_random_exponential

from bench.load import plugin, shapes
from web.config import redis_url

HIT = "POST /hits"
RETRY = "POST /hits (retry)"


class Retryable(Exception):
    """The outcome of this try is unknown or transient: try again with the same key, not before ``retry_after`` s."""

    def __init__(self, retry_after=0.0):
        super().__init__(retry_after)
        self.retry_after = retry_after


def retry_after(response):
    """Seconds from a ``Retry-After: <seconds>`` header, capped at 5; 0 without one."""
    try:
        return min(5.0, max(0.0, float((response.headers or {}).get("Retry-After", 0))))
    except (TypeError, ValueError):
        return 0.0


def back_off(jitter):
    """A tenacity wait: the jittered back-off, or the last try's Retry-After when longer."""
    def wait(state):
        return max(jitter(state), getattr(state.outcome.exception(), "retry_after", 0.0))
    return wait


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    # Locust's own parser, not an argument group: only it knows include_in_web_ui.
    parser.add_argument("--run-id", default="", help="prefix of every key; generated when empty")
    parser.add_argument("--report-dir", default="reports/latest", help="where the journal and verdict go")
    parser.add_argument("--redis-url", default=redis_url(os.environ), include_in_web_ui=False,
                       help="the formation's Redis, read for the ledger (not for hits)")
    parser.add_argument("--hit-tries", type=int, default=50, help="most tries per hit before its outcome is unknown")
    parser.add_argument("--hit-budget", type=float, default=20.0,
                        help="seconds a hit is retried for, from its first try, before its outcome is unknown")
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
            stop=stop_after_attempt(options.hit_tries) | stop_before_delay(options.hit_budget),
            wait=back_off(wait_random_exponential(multiplier=0.05, max=1.0)),
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        )

    @task
    def hit(self):
        journal = plugin.journal_of(self.environment)
        key = journal.key(self.number, next(self.sequence))
        journal.invoke(key)
        tries = 0
        try:
            for attempt in self.retrying:
                with attempt:
                    tries = attempt.retry_state.attempt_number
                    number = self.try_hit(key, tries)
        except Retryable:
            journal.complete(key, "info", tries=tries)
        else:
            journal.complete(key, "ok" if number is not None else "fail", number, tries)

    def try_hit(self, key, attempt):
        """The acknowledged number, None when refused for good; Retryable when unknown."""
        headers = {"Idempotency-Key": key}
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
            raise Retryable(retry_after(response))
