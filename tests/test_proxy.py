"""The proxy in front of real gunicorn instances: routing, retries, discovery, draining, metrics."""
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import redis
import requests

from tests.procs import ROOT, free_port, kill_tree, process_env, wait_until
from common.registry import Registry
from common.schema import registry_entry, run_ledger


def metrics(proxy):
    return requests.get(proxy.url + "/_proxy/metrics", timeout=5).json()


def backend_stats(proxy):
    return {b["address"]: b for b in metrics(proxy)["backends"]}


def count(web):
    return requests.get(web.url + "/hits", timeout=5).json()["hits"]


def instance(response):
    return response.headers["X-Served-By"].split(";")[0]


def test_round_robin_is_visible_in_x_served_by(procs, redis_url):
    webs = [procs.web(redis_url, name=f"web.{i}", WEB_WORKERS=1) for i in (1, 2, 3)]
    proxy = procs.proxy(redis_url)
    with requests.Session() as session:
        responses = [session.get(proxy.url + "/hits", timeout=10) for _ in range(9)]
    assert {r.status_code for r in responses} == {200}
    names = [instance(r) for r in responses]
    assert sorted(names) == sorted(["web.1", "web.2", "web.3"] * 3)
    assert names[:3] * 3 == names, "each instance in turn"
    assert {r.headers["X-Backend"] for r in responses} == {w.address for w in webs}
    assert {r.headers["X-Proxy-Tries"] for r in responses} == {"1"}
    assert all(re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"]) for r in responses)


@pytest.mark.parametrize("balance", ["least-loaded", "round-robin"])
def test_least_loaded_prefers_an_idle_backend_over_a_busy_one(procs, redis_url, balance):
    webs = {w.address: w for w in (procs.web(redis_url, name=f"web.{i}", WORK_MS=2000, WEB_WORKERS=1) for i in (1, 2))}
    proxy = procs.proxy(redis_url, **({"PROXY_BALANCE": balance} if balance == "round-robin" else {}))
    result = {}
    slow = post_in_background(proxy.url + "/hits", result)  # held 2 s inside whichever instance gets it
    busy = wait_until(lambda: busy_backend(proxy), what="the slow request in flight")
    [idle] = set(webs) - {busy}
    with requests.Session() as session:
        quick = [session.get(proxy.url + "/healthz", timeout=10).headers["X-Backend"] for _ in range(6)]
    assert busy_backend(proxy) == busy, "the slow request was still in flight throughout"
    if balance == "least-loaded":
        assert quick == [idle] * 6, "every quick request went to the instance with nothing in flight"
    else:  # the old way: in turn, busy or not
        assert sorted(quick) == sorted([idle, busy] * 3)
    slow.join(30)
    assert result["response"].status_code == 200


def test_refused_connections_are_retried_transparently(procs, redis_url):
    web = procs.web(redis_url)
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    # Without stamped keys only the "nothing was delivered" rule can allow these retries.
    proxy = procs.proxy(PROXY_BACKENDS=f"{dead},{web.address}", PROXY_STAMP_KEYS=0)
    responses = [requests.post(proxy.url + "/hits", timeout=10) for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 6
    assert sorted(r.json()["hits"] for r in responses) == [1, 2, 3, 4, 5, 6]
    # Whichever request met the dead backend first took two tries; after that it is down and skipped.
    assert sorted(r.headers["X-Proxy-Tries"] for r in responses[:2]) == ["1", "2"]
    assert [r.headers["X-Proxy-Tries"] for r in responses[2:]] == ["1"] * 4
    stats = backend_stats(proxy)
    assert stats[dead]["state"] == "down" and stats[dead]["requests"] == stats[dead]["failures"] == 1
    assert stats[web.address]["retries"] == 1


def busy_backend(proxy):
    return next((a for a, b in backend_stats(proxy).items() if b["in_flight"]), None)


def post_in_background(url, result, **kwargs):
    def send():
        try:
            result["response"] = requests.post(url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            result["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def kill_workers_mid_request(proxy, webs, method="POST", path="/hits", headers=None):
    """Send one request, SIGKILL the workers of whichever instance holds it; its response and that address."""
    result = {}

    def send():
        result["response"] = requests.request(method, proxy.url + path, headers=headers or {}, timeout=30)

    thread = threading.Thread(target=send)
    thread.start()
    busy = wait_until(lambda: busy_backend(proxy), what="the request in flight")
    time.sleep(0.3)  # well inside the instance's WORK_MS, before the hit is counted
    for worker in webs[busy].workers:
        worker.kill()
    thread.join(30)
    return result["response"], busy


@pytest.mark.parametrize("key", ["killtest:1", None], ids=["client-key", "stamped-key"])
def test_backend_killed_mid_request_is_retried_elsewhere(procs, redis_url, key):
    webs = {w.address: w for w in (procs.web(redis_url, name=f"web.{i}", WORK_MS=1500, WEB_WORKERS=1) for i in (1, 2))}
    proxy = procs.proxy(redis_url)
    response, killed = kill_workers_mid_request(proxy, webs, headers={"Idempotency-Key": key} if key else {})
    assert response.status_code == 200, response.text
    assert response.headers["X-Proxy-Tries"] == "2"
    assert response.headers["X-Backend"] != killed
    assert response.json()["hits"] == 1
    survivor = webs[response.headers["X-Backend"]]
    assert count(survivor) == 1
    totals = metrics(proxy)["totals"]
    assert totals["retries"] == 1 and totals["failures"] == 1


@pytest.mark.parametrize("method,path", [("POST", "/hits"), ("GET", "/")], ids=["post-hits", "get-seed-page"])
def test_keyless_request_after_a_reset_gets_502_and_is_not_retried(procs, redis_url, method, path):
    webs = {w.address: w for w in (procs.web(redis_url, name=f"web.{i}", WORK_MS=1500, WEB_WORKERS=1) for i in (1, 2))}
    proxy = procs.proxy(redis_url, PROXY_STAMP_KEYS=0)
    response, killed = kill_workers_mid_request(proxy, webs, method, path)
    assert response.status_code == 502
    assert response.json()["outcome"] == "unknown"
    assert response.headers["X-Proxy-Tries"] == "1" and response.headers["X-Backend"] == killed
    # Give a hidden re-send (aiohttp's own, say) time to land on the respawned workers.
    wait_until(lambda: requests.get(webs[killed].url + "/healthz", timeout=1).ok, what="respawned workers")
    time.sleep(1)
    assert count(webs[killed]) <= 1
    stats = backend_stats(proxy)
    assert [s["requests"] for s in stats.values()].count(0) == 1, "the other instance never saw it"
    assert metrics(proxy)["totals"]["retries"] == 0


def test_reset_after_the_backend_counted_is_retried_with_the_same_key(procs, redis_url, relay_factory):
    web = procs.web(redis_url)
    relay = relay_factory(web)  # counts at the web instance, then resets the proxy's connection
    proxy = procs.proxy(PROXY_BACKENDS=f"{relay.address},{web.address}")
    responses = [requests.post(proxy.url + "/hits", timeout=10) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    retried = [r for r in responses if r.headers["X-Proxy-Tries"] == "2"]
    assert len(retried) == 1, "one of the two met the relay first"
    assert retried[0].headers["Idempotent-Replayed"] == "true"
    assert sorted(r.json()["hits"] for r in responses) == [1, 2]
    assert count(web) == 2
    [sent] = relay.requests
    assert re.search(rb"(?im)^idempotency-key: proxy-[0-9a-f]{32}\r$", sent)


def test_without_stamped_keys_the_same_reset_is_a_502_and_the_hit_counted_once(procs, redis_url, relay_factory):
    web = procs.web(redis_url)
    relay = relay_factory(web)
    proxy = procs.proxy(PROXY_BACKENDS=relay.address, PROXY_STAMP_KEYS=0)
    response = requests.post(proxy.url + "/hits", timeout=10)
    assert response.status_code == 502 and response.json()["outcome"] == "unknown"
    assert len(relay.requests) == 1
    assert count(web) == 1  # the outcome really was unknown to the client: it did count


@pytest.mark.parametrize("buffer", ["65536", "0"], ids=["buffered", "streamed"])
def test_a_body_cut_short_is_never_retried_nor_passed_off_as_whole(procs, redis_url, relay_factory, buffer):
    web = procs.web(redis_url)
    relay = relay_factory(web, withhold=5)
    proxy = procs.proxy(PROXY_BACKENDS=relay.address, PROXY_BUFFER=buffer)
    # The key would allow a retry, and a retry would reach the relay again: none may happen.
    send = lambda: requests.post(proxy.url + "/hits", headers={"Idempotency-Key": "cut-1"}, timeout=10)  # noqa: E731
    if buffer == "0":  # the head went out before the body broke: the client must see the break
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            send()
    else:  # nothing went out yet: a clean answer
        response = send()
        assert response.status_code == 502 and response.json()["outcome"] == "unknown"
        assert response.json()["idempotency_key"] == "cut-1"
    assert len(relay.requests) == 1
    assert count(web) == 1
    totals = metrics(proxy)["totals"]
    assert totals["retries"] == 0 and totals["failures"] == 1


def test_hop_by_hop_headers_dropped_and_forwarding_headers_set(procs, redis_url, relay_factory):
    web = procs.web(redis_url)
    relay = relay_factory(web, withhold=0)
    proxy = procs.proxy(PROXY_BACKENDS=relay.address)
    # Raw bytes, because header names are case-insensitive and clients send either case.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
        conn.sendall(b"GET /hits?x=1 HTTP/1.1\r\nHost: proxy\r\n"
                     b"connection: keep-alive, x-drop-me\r\nX-DROP-ME: 1\r\nkeep-alive: timeout=5\r\n"
                     b"te: trailers\r\nTrailer: X-T\r\nproxy-authorization: Basic c2VjcmV0\r\nupgrade: h2c\r\n"
                     b"X-Keep-Me: 1\r\nx-forwarded-for: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"
                     b"X-Request-Id: client-id-1\r\n\r\n")
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nX-Request-Id: client-id-1\r\n" in answer
    [sent] = relay.requests
    head = sent.decode().lower()
    assert head.startswith("get /hits?x=1 http/1.1\r\n")
    for gone in ("x-drop-me", "keep-alive:", "te:", "trailer:", "proxy-authorization", "upgrade", "connection:"):
        assert f"\r\n{gone}" not in head, gone
    assert "\r\nx-keep-me: 1\r\n" in head
    assert "\r\nx-forwarded-for: 203.0.113.7, 127.0.0.1\r\n" in head
    assert "\r\nx-forwarded-proto: http\r\n" in head
    assert "\r\nx-request-id: client-id-1\r\n" in head


def test_new_instance_gets_traffic_and_a_stopped_one_loses_it(procs, redis_url):
    first = procs.web(redis_url, name="web.1", REGISTRY_TTL=1)
    proxy = procs.proxy(redis_url)
    assert {instance(requests.get(proxy.url + "/hits")) for _ in range(4)} == {"web.1"}
    second = procs.web(redis_url, name="web.2", REGISTRY_TTL=1)
    wait_until(lambda: any(instance(requests.get(proxy.url + "/hits")) == "web.2" for _ in range(2)),
               timeout=5, what="web.2 in rotation")

    # Graceful stop: deregistered at once, so every request from here on still succeeds.
    os.kill(first.popen.pid, signal.SIGTERM)
    wait_until(lambda: metrics(proxy)["backend_set"] == [second.address], timeout=5, what="web.1 dropped")
    assert {instance(requests.get(proxy.url + "/hits")) for _ in range(4)} == {"web.2"}

    # SIGKILL: no goodbye; refused connections are retried until the entry expires.
    third = procs.web(redis_url, name="web.3", REGISTRY_TTL=1)
    wait_until(lambda: third.address in metrics(proxy)["backend_set"], timeout=5, what="web.3 in rotation")
    kill_tree(second.popen.pid)  # master and workers, so nothing answers on its port
    responses = [requests.get(proxy.url + "/hits", timeout=10) for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 6
    assert {instance(r) for r in responses} == {"web.3"}
    wait_until(lambda: metrics(proxy)["backend_set"] == [third.address], timeout=10, what="web.2 expired")


def test_kill_9_under_a_steady_stream_loses_no_keyed_request(procs, redis_url, redis_client):
    webs = [procs.web(redis_url, name=f"web.{i}", WORK_MS=20) for i in (1, 2)]
    proxy = procs.proxy(redis_url)
    stop = threading.Event()

    def client(n):
        sent = []
        with requests.Session() as session:
            while not stop.is_set():
                key = f"stream:{n}-{len(sent)}"
                sent.append((key, session.post(proxy.url + "/hits", headers={"Idempotency-Key": key}, timeout=30)))
        return sent

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(client, n) for n in range(4)]
        time.sleep(1)
        webs[0].workers[0].kill()
        time.sleep(1)
        for worker in webs[1].workers:
            worker.kill()
        time.sleep(1)
        stop.set()
        sent = [item for future in futures for item in future.result()]
    assert {r.status_code for _, r in sent} == {200}
    numbers = [r.json()["hits"] for _, r in sent]
    assert sorted(numbers) == list(range(1, len(sent) + 1)), "every hit counted exactly once"
    ledger = [json.loads(e) for e in redis_client.lrange(run_ledger("stream"), 0, -1)]
    assert sorted(e["key"] for e in ledger) == sorted(key for key, _ in sent)
    assert metrics(proxy)["totals"]["retries"] >= 1, "the kills did hit requests in flight"


def test_registry_entry_outside_the_allow_list_is_never_dialled(procs, redis_url, redis_client, tmp_path):
    stranger = socket.create_server(("127.0.0.2", 0))  # loopback, but outside PROXY_ALLOW below
    stranger.settimeout(0.2)
    stranger_address = "127.0.0.2:%d" % stranger.getsockname()[1]
    registry = Registry(redis_client, ttl=60)
    for address in (stranger_address, "example.com:80", "127.0.0.1:99999"):
        registry.register({"name": "stray", "address": address})
    redis_client.set(registry_entry("garbage"), "{not json", ex=60)
    web = procs.web(redis_url)
    log = tmp_path / "proxy.log"
    proxy = procs.proxy(redis_url, log_path=log, PROXY_ALLOW="127.0.0.1/32")
    try:
        responses = [requests.get(proxy.url + "/hits", timeout=10) for _ in range(10)]
        assert {r.headers["X-Backend"] for r in responses} == {web.address}
        assert metrics(proxy)["backend_set"] == [web.address]
        with pytest.raises(socket.timeout):
            stranger.accept()
    finally:
        stranger.close()
    warnings = [line for line in log.read_text().splitlines() if "ignoring registry entry" in line]
    assert len([w for w in warnings if stranger_address in w]) == 1, "warned once, not every poll"
    assert any("example.com:80" in w for w in warnings)


def test_sigterm_stops_accepting_and_drains_in_flight_requests(procs, redis_url):
    web = procs.web(redis_url, WORK_MS=1500)
    proxy = procs.proxy(redis_url)
    result = {}
    slow = post_in_background(proxy.url + "/hits", result)
    wait_until(lambda: busy_backend(proxy), what="the request in flight")
    proxy.popen.send_signal(signal.SIGTERM)

    def refused():
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
        except ConnectionRefusedError:
            return True

    wait_until(refused, timeout=5, what="the listener closed")
    slow.join(30)
    assert result["response"].status_code == 200 and result["response"].json()["hits"] == 1
    assert proxy.popen.wait(timeout=15) == 0
    assert count(web) == 1


def test_metrics_endpoint_is_answered_by_the_proxy(procs, redis_url):
    webs = [procs.web(redis_url, name=f"web.{i}") for i in (1, 2)]
    proxy = procs.proxy(redis_url)
    for _ in range(4):
        requests.post(proxy.url + "/hits", timeout=10)
    assert requests.post(proxy.url + "/_proxy/metrics").status_code == 405
    assert requests.get(proxy.url + "/_proxy/anything").status_code == 404
    data = metrics(proxy)
    totals = data["totals"]
    assert totals["requests"] == 4 and totals["responses"] == {"2xx": 4}
    assert totals["in_flight"] == 0 and totals["retries"] == totals["failures"] == 0
    assert totals["rate_rps"] > 0 and 0 < totals["p50_ms"] <= totals["p95_ms"] <= totals["p99_ms"]
    assert data["backend_set"] == sorted(w.address for w in webs)
    for backend in data["backends"]:
        assert set(backend) == {"address", "name", "state", "requests", "failures", "retries", "in_flight"}
        assert backend["requests"] == 2 and backend["state"] == "up"
    assert count(webs[0]) == 4  # one shared counter; the /_proxy/ calls added nothing


def test_a_bad_setting_exits_2_with_the_reason(procs, tmp_path):
    log = tmp_path / "proxy.log"
    popen = procs.spawn([sys.executable, "-m", "proxy"], process_env(PROXY_TRIES="0"), log)
    assert popen.wait(timeout=15) == 2
    assert "PROXY_TRIES must be at least 1" in log.read_text()


def test_a_registry_that_comes_back_empty_keeps_the_known_backends_until_they_re_register(procs, tmp_path):
    """A backing service restarted without persistence forgets every registry entry; the instances put theirs
    back within a heartbeat, and meanwhile the proxy keeps routing to the ones it knew."""
    port = free_port()
    supervisor = procs.spawn([str(ROOT / "scripts/redis-server")],
                             process_env(PORT_REDIS=port, REDIS_DATA=tmp_path / "redis", REDIS_PERSISTENCE="none"))
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_until(client.ping, timeout=30, what="the backing service")
    # A heartbeat every 10 s: the proxy surely reads the emptied registry before web.1 is back in it.
    web = procs.web(url, name="web.1", REGISTRY_TTL=30)
    # A generous grace: the test must see it, however slowly this machine polls.
    proxy = procs.proxy(url, PROXY_REGISTRY_GRACE=60)
    wait_until(lambda: metrics(proxy)["backend_set"] == [web.address], timeout=30, what="the proxy routing to web.1")
    [server] = psutil.Process(supervisor.pid).children()
    server.kill()
    wait_until(lambda: client.ping() and client.dbsize() == 0 and client.info("server")["process_id"] != server.pid,
               timeout=30, what="the server restarted, empty")
    state = wait_until(lambda: (m := metrics(proxy))["discovery"].startswith("registry") and m, timeout=30,
                       what="the proxy's discovery state")
    assert state["backend_set"] == [web.address], state
    wait_until(lambda: Registry(client).instances(), timeout=30, what="web.1 registered again")
    assert requests.get(proxy.url + "/healthz", timeout=10).ok
