"""One logical request of a Locust user: tried again with the same Idempotency-Key until its answer is final.

    answer = call(user, "POST", "/cart/items", "POST /cart/items", key=key, json={"item": "i1"})
    answer.status, answer.data, answer.instance         # raises Retryable when the outcome stays unknown
    call(user, "POST", "/hits", "POST /hits", key=key, expect=lambda data: type(data.get("hits")) is int)

A connection error, a 5xx, a 408 or a 429 is transient: tried again after a
jittered back-off, under the name ``"<name> (retry)"`` in Locust's statistics,
at most ``--hit-tries`` times in all; every other answer is final, a 4xx
included (the request was refused, so nothing was applied). ``user.retrying``
is ``retrying(options)``, made in the user's ``on_start``.
"""
from dataclasses import dataclass, field

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

TRANSIENT = (408, 429)


class Retryable(Exception):
    """The outcome of this try is unknown or transient: try again with the same key."""


@dataclass
class Answer:
    status: int
    data: dict = field(default_factory=dict)
    instance: str = ""  # the web instance that answered, from X-Served-By
    text: str = ""  # the body as sent (the seed's page is not JSON)

    @property
    def ok(self):
        return 200 <= self.status < 300

    @property
    def error(self):
        return str(self.data.get("error", ""))[:200]


def retrying(options, tries=None):
    """Up to ``--hit-tries`` tries (or ``tries``: 1 for a request that must not be sent twice)."""
    return Retrying(
        stop=stop_after_attempt(tries or options.hit_tries),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception_type(Retryable),
        reraise=True,
    )


def call(user, method, path, name, key=None, headers=None, expect=None, **request):
    """The final Answer to one logical request; Retryable when every try was transient or unknown.

    ``expect(data)`` says whether a 2xx answer's JSON is whole; one that is not is tried again.
    """
    headers = {**(headers or {}), **({"Idempotency-Key": key} if key else {})}
    for attempt in user.retrying:
        with attempt:
            answer = try_once(user, method, path, name if attempt.retry_state.attempt_number == 1 else f"{name} (retry)",
                              headers, expect, request)
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
            raise Retryable()
        if 200 <= status < 300 and expect and not expect(data):
            response.failure(f"{status} without what it must hold: {response.text[:80]}")
            raise Retryable()
        served_by = response.headers.get("X-Served-By") or ""
        return Answer(status, data, served_by.split(";")[0], response.text or "")
