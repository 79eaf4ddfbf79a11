"""One logical request of a Locust user: tried again with the same Idempotency-Key until its answer is final.

    answer = call(user, "POST", "/cart/items", "POST /cart/items", key=key, json={"item": "i1"})
    answer.status, answer.data, answer.instance         # raises Retryable when the outcome stays unknown
    call(user, "POST", "/hits", "POST /hits", key=key, expect=lambda data: type(data.get("hits")) is int)

A connection error, a 5xx, a 408 or a 429 is transient: tried again after a
jittered back-off, or after the response's ``Retry-After`` when that is longer
(web's 503 while Redis is away says 1 s), under the name ``"<name> (retry)"`` in
Locust's statistics, until ``--hit-budget`` seconds have gone by since the first
try (or ``--hit-tries`` tries), so an outage of a few seconds costs no request;
every other answer is final, a 4xx included (the request was refused, so nothing
was applied). ``answer.tries`` says how many it took. ``user.retrying``
is ``retrying(options)``, made in the user's ``on_start``.
"""
from dataclasses import dataclass, field

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay, wait_random_exponential

TRANSIENT = (408, 429)


class Retryable(Exception):
    """The outcome of this try is unknown or transient: try again with the same key, not before ``retry_after`` s."""

    def __init__(self, retry_after=0.0):
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass
class Answer:
    status: int
    data: dict = field(default_factory=dict)
    instance: str = ""  # the web instance that answered, from X-Served-By
    text: str = ""  # the body as sent (the seed's page is not JSON)
    tries: int = 1

    @property
    def ok(self):
        return 200 <= self.status < 300

    @property
    def error(self):
        return str(self.data.get("error", ""))[:200]


def retrying(options, tries=None):
    """Tries until ``--hit-budget`` seconds or ``--hit-tries`` tries (or ``tries``: 1 for a request that must
    not be sent twice), waiting the jittered back-off or the last answer's Retry-After, whichever is longer."""
    jitter = wait_random_exponential(multiplier=0.05, max=1.0)
    return Retrying(
        stop=stop_after_attempt(tries or options.hit_tries) | stop_before_delay(options.hit_budget),
        wait=lambda state: max(jitter(state), getattr(state.outcome.exception(), "retry_after", 0.0)),
        retry=retry_if_exception_type(Retryable),
        reraise=True,
    )


def retry_after(response):
    """Seconds from a ``Retry-After: <seconds>`` header, capped at 5; 0 without one."""
    try:
        return min(5.0, max(0.0, float((response.headers or {}).get("Retry-After", 0))))
    except (TypeError, ValueError):
        return 0.0


def call(user, method, path, name, key=None, headers=None, expect=None, **request):
    """The final Answer to one logical request; Retryable when every try was transient or unknown.

    ``expect(data)`` says whether a 2xx answer's JSON is whole; one that is not is tried again.
    """
    headers = {**(headers or {}), **({"Idempotency-Key": key} if key else {})}
    for attempt in user.retrying:
        with attempt:
            tries = attempt.retry_state.attempt_number
            answer = try_once(user, method, path, name if tries == 1 else f"{name} (retry)", headers, expect, request)
    answer.tries = tries
    return answer


def try_once(user, method, path, name, headers, expect, request):
    with user.client.request(method, path, name=name, headers=headers, catch_response=True, **request) as response:
        status = response.status_code or 0
        try:
            data = response.json() if response.text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if not 200 <= status < 300:
            response.failure(f"{status or 'no response'}: {(response.text or str(response.error))[:80]}")
        if status == 0 or status >= 500 or status in TRANSIENT:
            raise Retryable(retry_after(response))
        if 200 <= status < 300 and expect and not expect(data):
            response.failure(f"{status} without what it must hold: {response.text[:80]}")
            raise Retryable()
        served_by = response.headers.get("X-Served-By") or ""
        return Answer(status, data, served_by.split(";")[0], response.text or "")
