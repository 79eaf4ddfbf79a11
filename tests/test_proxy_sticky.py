"""PROXY_STICKY=cookie in front of real gunicorn instances: pins kept, cookies stripped, forgeries ignored, re-pins.

The negative controls: without stickiness a memory session vanishes on its
second request, and a cookie naming an instance outside the pool reaches it never.
"""
import hashlib
import hmac
import os
import re
import signal

import requests

from tests.procs import kill_tree, wait_until

COOKIE = "factor6_backend"
SECRET = "formation-secret"


def token(address, secret=SECRET):
    """The cookie value a proxy with ``secret`` gives the backend at ``address``, worked out independently."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:32]


def sticky_totals(proxy):
    return requests.get(proxy.url + "/_proxy/metrics", timeout=10).json()["totals"]["sticky"]


def pin_of(response):
    """The proxy's cookie the response sets, or None."""
    return response.cookies.get(COOKIE)


def test_a_visitor_stays_on_the_instance_that_first_served_it_and_the_cookie_is_opaque(procs, redis_url):
    webs = [procs.web(redis_url, name=f"web.{i}", WEB_WORKERS=1) for i in (1, 2)]
    proxy = procs.proxy(PROXY_BACKENDS=",".join(w.address for w in webs), PROXY_STICKY="cookie",
                        PROXY_STICKY_SECRET=SECRET, PROXY_BALANCE="round-robin")
    with requests.Session() as visitor:
        first = visitor.get(proxy.url + "/hits", timeout=10)
        pinned = first.headers["X-Backend"]
        assert pin_of(first) == token(pinned), "an HMAC of the address, not the address"
        assert re.fullmatch(r"[0-9a-f]{32}", pin_of(first)) and pinned.split(":")[1] not in pin_of(first)
        assert first.headers["Set-Cookie"] == f"{COOKIE}={token(pinned)}; Path=/; HttpOnly; SameSite=Lax"
        later = [visitor.get(proxy.url + "/hits", timeout=10) for _ in range(10)]
    assert {r.headers["X-Backend"] for r in later} == {pinned}
    assert not any("Set-Cookie" in r.headers for r in later), "a valid pin is not set again"
    # Visitors without the cookie are still balanced over both.
    assert {requests.get(proxy.url + "/hits", timeout=10).headers["X-Backend"] for _ in range(4)} == \
        {w.address for w in webs}
    assert sticky_totals(proxy) == {"hits": 10, "pins": 5, "repins": 0}


def test_a_session_kept_in_process_memory_lasts_only_behind_the_sticky_proxy(procs, redis_url):
    webs = [procs.web(redis_url, name=f"web.{i}", WEB_WORKERS=1, SESSION_STORE="memory") for i in (1, 2)]
    backends = ",".join(w.address for w in webs)
    sticky = procs.proxy(PROXY_BACKENDS=backends, PROXY_STICKY="cookie", PROXY_BALANCE="round-robin")
    plain = procs.proxy(PROXY_BACKENDS=backends, PROXY_BALANCE="round-robin")
    for proxy, kept in ((sticky, True), (plain, False)):
        with requests.Session() as visitor:
            assert visitor.post(proxy.url + "/session", json={"visitor": "ana"}, timeout=10).ok
            carts = [visitor.post(proxy.url + "/cart/items", json={"item": f"i{n}"}, timeout=10,
                                  headers={"Idempotency-Key": f"k:{proxy.port}:{n}"}) for n in (1, 2, 3)]
        if kept:  # the Flask session cookie passed on beside the proxy's own
            assert [c.status_code for c in carts] == [200] * 3 and carts[-1].json()["cart"] == ["i1", "i2", "i3"]
        else:  # the negative control: round robin sends the second request to the instance that never saw it
            assert carts[0].status_code == 401, carts[0].text


def test_the_proxy_cookie_is_taken_out_before_the_backend_and_the_others_pass(procs, redis_url, relay_factory):
    relay = relay_factory(procs.web(redis_url), withhold=0)
    proxy = procs.proxy(PROXY_BACKENDS=relay.address, PROXY_STICKY="cookie", PROXY_STICKY_SECRET=SECRET)
    pin = token(relay.address)
    for cookie in (f"session=abc; {COOKIE}={pin}; theme=dark", f"{COOKIE}={pin}"):
        response = requests.get(proxy.url + "/hits", headers={"Cookie": cookie}, timeout=10)
        assert response.ok and "Set-Cookie" not in response.headers
    with_others, alone = (request.decode().lower() for request in relay.requests)
    assert "\r\ncookie: session=abc; theme=dark\r\n" in with_others and COOKIE not in with_others
    assert "\r\ncookie:" not in alone, "a Cookie header left empty is dropped"


def test_without_sticky_no_cookie_is_set_and_a_cookie_of_that_name_passes_untouched(procs, redis_url, relay_factory):
    relay = relay_factory(procs.web(redis_url), withhold=0)
    proxy = procs.proxy(PROXY_BACKENDS=relay.address)
    response = requests.get(proxy.url + "/hits", headers={"Cookie": f"{COOKIE}=x; a=1"}, timeout=10)
    assert response.ok and "Set-Cookie" not in response.headers
    [sent] = relay.requests
    assert f"\r\ncookie: {COOKIE}=x; a=1\r\n" in sent.decode().lower()
    assert sticky_totals(proxy) == {"hits": 0, "pins": 0, "repins": 0}


def test_a_forged_cookie_is_ignored_balanced_as_usual_and_replaced(procs, redis_url):
    webs = [procs.web(redis_url, name=f"web.{i}", WEB_WORKERS=1) for i in (1, 2)]
    outsider = procs.web(redis_url, name="web.3", WEB_WORKERS=1)  # not in the pool: no cookie may reach it
    proxy = procs.proxy(PROXY_BACKENDS=",".join(w.address for w in webs), PROXY_STICKY="cookie",
                        PROXY_STICKY_SECRET=SECRET, PROXY_BALANCE="round-robin")
    forged = ["0" * 32, webs[0].address, token(outsider.address), token(webs[0].address, "another secret"), ""]
    responses = [requests.get(proxy.url + "/hits", cookies={COOKIE: value}, timeout=10)
                 for value in forged + forged]
    served = [r.headers["X-Backend"] for r in responses]
    assert set(served) == {w.address for w in webs} and served[:2] * 5 == served, "plain round robin"
    assert all(pin_of(r) == token(r.headers["X-Backend"]) for r in responses), "each pinned afresh"
    assert sticky_totals(proxy) == {"hits": 0, "pins": 10, "repins": 0}


def test_a_pin_on_a_killed_instance_moves_to_the_one_that_answers(procs, redis_url):
    webs = [procs.web(redis_url, name=f"web.{i}", WEB_WORKERS=1) for i in (1, 2)]
    proxy = procs.proxy(PROXY_BACKENDS=",".join(w.address for w in webs), PROXY_STICKY="cookie")
    with requests.Session() as visitor:
        first = visitor.get(proxy.url + "/hits", timeout=10)
        pinned = next(w for w in webs if w.address == first.headers["X-Backend"])
        other = next(w for w in webs if w is not pinned)
        kill_tree(pinned.popen.pid)
        pinned.popen.wait()
        moved = visitor.get(proxy.url + "/hits", timeout=10)
        assert moved.status_code == 200 and moved.headers["X-Backend"] == other.address
        assert moved.headers["X-Proxy-Tries"] == "2", "the pinned instance was tried first, then the retry moved on"
        assert pin_of(moved) and pin_of(moved) != pin_of(first)
        after = [visitor.get(proxy.url + "/hits", timeout=10) for _ in range(5)]
    assert {r.headers["X-Backend"] for r in after} == {other.address}
    assert not any("Set-Cookie" in r.headers for r in after)
    # The old cookie names an instance that is down now: balanced to the live one and re-pinned at once.
    stale = requests.get(proxy.url + "/hits", cookies={COOKIE: pin_of(first)}, timeout=10)
    assert stale.headers["X-Backend"] == other.address and stale.headers["X-Proxy-Tries"] == "1"
    assert pin_of(stale) == pin_of(moved)
    assert sticky_totals(proxy) == {"hits": 5, "pins": 1, "repins": 2}


def test_a_pin_on_an_instance_that_left_the_registry_is_not_tried(procs, redis_url):
    webs = [procs.web(redis_url, name=f"web.{i}", WEB_WORKERS=1, REGISTRY_TTL=1) for i in (1, 2)]
    proxy = procs.proxy(redis_url, PROXY_STICKY="cookie")
    backend_set = lambda: requests.get(proxy.url + "/_proxy/metrics", timeout=10).json()["backend_set"]  # noqa: E731
    wait_until(lambda: len(backend_set()) == 2, timeout=10, what="both instances in rotation")
    with requests.Session() as visitor:
        first = visitor.get(proxy.url + "/hits", timeout=10)
        pinned = next(w for w in webs if w.address == first.headers["X-Backend"])
        other = next(w for w in webs if w is not pinned)
        os.kill(pinned.popen.pid, signal.SIGTERM)  # a graceful stop deregisters at once
        wait_until(lambda: backend_set() == [other.address], timeout=10, what="the pinned instance gone")
        moved = visitor.get(proxy.url + "/hits", timeout=10)
    assert moved.headers["X-Backend"] == other.address and moved.headers["X-Proxy-Tries"] == "1"
    assert pin_of(moved) and pin_of(moved) != pin_of(first)
    assert sticky_totals(proxy)["repins"] == 1
