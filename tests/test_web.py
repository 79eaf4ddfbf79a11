"""The web process against a real redis-server and real gunicorn instances."""
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from tests.procs import wait_until
from common.registry import Registry


def post_many(url, threads, per_thread, path="/hits"):
    def worker(_):
        with requests.Session() as session:
            return [session.post(url + path, timeout=10) for _ in range(per_thread)]

    with ThreadPoolExecutor(threads) as pool:
        return [r for batch in pool.map(worker, range(threads)) for r in batch]


def test_concurrent_posts_get_every_number_exactly_once(procs, redis_url):
    web = procs.web(redis_url)
    responses = post_many(web.url, threads=8, per_thread=500)
    assert {r.status_code for r in responses} == {200}
    numbers = sorted(r.json()["hits"] for r in responses)
    assert numbers == list(range(1, 4001))


def test_seed_page_never_shows_one_number_twice(procs, redis_url):
    web = procs.web(redis_url)

    def worker(_):
        with requests.Session() as session:
            return [session.get(web.url + "/", timeout=10).text for _ in range(200)]

    with ThreadPoolExecutor(8) as pool:
        pages = [p for batch in pool.map(worker, range(8)) for p in batch]
    numbers = [int(page.split()[2]) for page in pages]
    assert all(page.startswith("Hello World! ") for page in pages)
    assert sorted(numbers) == list(range(1, 1601))


def test_seed_variables_host_redis_and_port_redis(procs, redis_server):
    web = procs.web("", HOST_REDIS="127.0.0.1", PORT_REDIS=redis_server.port)
    assert requests.post(web.url + "/hits").json()["hits"] == 1
    assert requests.get(web.url + "/hits").json()["hits"] == 1


def test_503_while_redis_is_down_then_recovers(procs, redis_server, tmp_path):
    web = procs.web(redis_server.url)
    assert requests.post(web.url + "/hits").status_code == 200
    redis_server.kill()
    for path, method in [("/hits", "post"), ("/", "get"), ("/readyz", "get")]:
        response = requests.request(method, web.url + path, timeout=10)
        assert response.status_code == 503, (path, response.text)
        assert "backing service unavailable" in response.text
        assert "Traceback" not in response.text
    assert requests.get(web.url + "/healthz").status_code == 200  # the process itself is fine
    procs.redis(tmp_path / "redis", port=redis_server.port)  # same data dir: the AOF brings the count back
    wait_until(lambda: requests.post(web.url + "/hits", timeout=5).ok, what="recovery")
    assert requests.get(web.url + "/hits").json()["hits"] == 2  # the 503s applied nothing


def test_sigterm_drains_a_slow_in_flight_request(procs, redis_url, redis_client):
    web = procs.web(redis_url, WORK_MS=1500)
    registry = Registry(redis_client)
    assert [e["address"] for e in registry.instances()] == [web.address]
    result = {}
    slow = threading.Thread(target=lambda: result.update(r=requests.post(web.url + "/hits", timeout=10)))
    slow.start()
    time.sleep(0.5)  # the request is now inside its 1.5 s of work
    os.kill(web.popen.pid, signal.SIGTERM)
    wait_until(lambda: registry.instances() == [], timeout=1, what="deregistration")
    slow.join()
    assert result["r"].status_code == 200 and result["r"].json()["hits"] == 1
    assert web.popen.wait(timeout=15) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(web.url + "/healthz", timeout=1)


def test_registry_shows_instances_come_and_go(procs, redis_url, redis_client):
    registry = Registry(redis_client)
    first = procs.web(redis_url, name="web.1", REGISTRY_TTL=1)
    second = procs.web(redis_url, name="web.2", REGISTRY_TTL=1)
    entries = {e["name"]: e for e in registry.instances()}
    assert set(entries) == {"web.1", "web.2"}
    assert entries["web.2"]["address"] == second.address and entries["web.2"]["pid"] == second.popen.pid
    os.kill(first.popen.pid, signal.SIGTERM)  # graceful: deregisters at once
    wait_until(lambda: [e["name"] for e in registry.instances()] == ["web.2"], timeout=2, what="web.1 gone")
    os.kill(second.popen.pid, signal.SIGKILL)  # no goodbye: the entry expires with its TTL
    wait_until(lambda: registry.instances() == [], timeout=5, what="web.2 expired")


def honcho_instances(registry, count):
    return wait_until(lambda: len(registry.instances()) == count and registry.instances(),
                      timeout=30, what=f"{count} registered instances")


def test_sigkill_of_a_worker_under_honcho_keeps_the_formation_up(procs, redis_client, tmp_path):
    port = redis_client.connection_pool.connection_kwargs["port"]
    # The fixture's redis serves this formation, so honcho runs the web type alone.
    honcho = procs.honcho("web=3", {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "WEB_WORKERS": 1},
                          tmp_path / "honcho.log", processes=["web"])
    registry = Registry(redis_client)
    instances = honcho_instances(registry, 3)
    target = instances[0]
    url = f"http://{target['address']}"
    # An instance registers before its master forks the worker: wait for the worker itself.
    [victim] = wait_until(lambda: psutil.Process(target["pid"]).children(), what="web.1's worker")
    killed_at = time.monotonic()
    victim.kill()

    def served_by_replacement():
        response = requests.post(url + "/hits", timeout=2)
        return response.ok and response.json()["served_by"]["pid"] != victim.pid

    wait_until(served_by_replacement, timeout=10, interval=0.01, what="replacement worker")
    recovery = time.monotonic() - killed_at
    print(f"replacement served {recovery:.3f}s after the kill")
    assert honcho.poll() is None, "honcho stopped the formation"
    assert len(registry.instances()) == 3
    for entry in registry.instances():
        assert requests.get(f"http://{entry['address']}/readyz", timeout=2).ok
