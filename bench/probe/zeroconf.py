"""The probes that need no factor6.toml: cookies carried to other instances, and one GET asked of every instance.

    cookies = CookieProbe(ready="/")
    cookies.issue(web1)              # GET ready on one instance: the cookies it sets, if any
    cookies.replay(web2, "elsewhere")   # the same cookies on another instance
    cookies.replay(web4, "after restart")
    same = same_get([web1, web2, web3], "/")
    results = [cookies.result, same]   # bench.probe.verdict.ProbeResult each

A cookie is carried, never refreshed by the jar: each replay sends exactly
what the first instance set. An instance that refuses it (an error status
where the first answered) or replaces it with a new value, where the first
instance, given its own cookie back, did not, points to a secret made per
process or sessions kept in memory. The same GET is asked twice of every
instance: instances whose own answers are stable but differ from each other
keep something of their own (a page that changes on every request is not
compared). Files written to disk are listed by the caller for every run.
Without a spec nothing is written, so the verdict is never VALID: INVALID
with these findings, or NO VERDICT ("no spec: nothing was written").
"""
from __future__ import annotations

import hashlib

import requests

from bench.probe.exchange import send
from bench.probe.verdict import LOST, UNSEEN, WRONG, ProbeResult

NO_SPEC = "no spec: nothing was written (add a factor6.toml with [[probe]] tables to probe writes)"


def set_cookies(response):
    return {cookie.name: cookie.value for cookie in response.cookies}


class CookieProbe:
    """A cookie set by one instance, replayed as it was on others: the ``cookies`` probe's result."""

    def __init__(self, ready="/"):
        self.ready = ready
        self.result = ProbeResult("cookies")
        # (exchange, cookies, whether the issuer replaces its own cookie, the exchange that showed it)
        self.issued = None

    def get(self, instance, cookies):
        return send(requests.Session(), instance.name, instance.url,
                    {"method": "GET", "path": self.ready, "cookies": dict(cookies)})

    def issue(self, instance):
        exchange, response = self.get(instance, {})
        cookies = set_cookies(response) if response is not None else {}
        if not cookies:
            self.result.stats["note"] = f"GET {self.ready} set no cookie: nothing to replay"
            return
        again, answer = self.get(instance, cookies)
        replaced = answer is not None and any(cookies.get(name) not in (None, value)
                                              for name, value in set_cookies(answer).items())
        self.issued = (exchange, cookies, replaced, again)
        self.result.stats["cookies"] = sorted(cookies)

    def replay(self, instance, when):
        """Send the issued cookies to ``instance``; a refusal or replacement there is a finding."""
        if not self.issued:
            return
        first, cookies, issuer_replaces, own = self.issued
        exchange, response = self.get(instance, cookies)
        if response is None:
            return
        self.result.stats["replays"] = self.result.stats.get("replays", 0) + 1
        new = {name: value for name, value in set_cookies(response).items() if cookies.get(name) not in (None, value)}
        refused = (response.status_code >= 400) and (own.status or 0) < 400
        if (new and not issuer_replaces) or refused:
            how = (f"refused it ({response.status_code})" if refused else
                   f"replaced {', '.join(sorted(new))} with a new value")
            category = LOST if when == "after restart" else UNSEEN
            self.result.add(category, {
                "category": category, "visitor": "cookie",
                "evidence": [first.line(), own.line() + " (the same cookie back on its own instance: kept)",
                             exchange.line() + f" ({when}: {how})",
                             "a cookie only one process understands: a secret made per process (set one SECRET_KEY"
                             " for all) or sessions kept in memory"],
                "curl": [first.curl(), exchange.curl()]})


def fingerprint(exchange):
    return exchange.status, hashlib.sha256(exchange.body.encode()).hexdigest()[:12]


def same_get(instances, path):
    """GET ``path`` twice on each instance: the ``same GET`` probe's result (stable answers that differ)."""
    result = ProbeResult("same GET")
    answers = {}
    for instance in instances:
        pair = [send(requests.Session(), instance.name, instance.url, {"method": "GET", "path": path})[0]
                for _ in range(2)]
        if any(exchange.status is None for exchange in pair):
            continue
        if fingerprint(pair[0]) != fingerprint(pair[1]):
            result.stats["note"] = f"GET {path} changes from one request to the next: not compared"
            return result
        answers[instance.name] = pair[0]
    distinct = {fingerprint(exchange): exchange for exchange in answers.values()}
    result.stats["instances"] = len(answers)
    if len(distinct) > 1:
        first, other = list(distinct.values())[:2]
        result.add(WRONG, {"category": WRONG, "visitor": "anonymous",
                           "evidence": [first.line(), other.line(),
                                        "each instance answers the same GET the same way every time, but not as the"
                                        " others do: something kept per process (a cache, a counter, a secret)"],
                           "curl": [first.curl(), other.curl()]})
    return result


def without_spec(results):
    """The zero-config results, each with the no-spec reason where it found nothing: never VALID."""
    for result in results:
        if not any(result.counted.values()):
            result.reasons.append(NO_SPEC)
    return results
