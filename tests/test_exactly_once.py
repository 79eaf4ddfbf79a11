"""Exactly-once hits with Idempotency-Key, and the checker catching the wrong-on-purpose modes.

The load here is plain threads posting straight to the instances, journaled in
the checker's event format; the verdict comes from the same functions
scripts/check uses, against the real Redis ledger.
"""
import http.client
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench.verdict.record import seal_run, start_run
from bench.verdict.sources import Source, read_redis
from common.schema import COUNTER, run_ledger, run_record
from tests.support import verdict_for


def test_one_key_sent_twenty_times_to_two_instances_counts_once(procs, redis_url, redis_client):
    instances = [procs.web(redis_url, name=f"web.{i}") for i in (1, 2)]
    headers = {"Idempotency-Key": '"run9:same-key"'}  # the IETF draft's quoted form

    def post(i):
        return requests.post(instances[i % 2].url + "/hits", headers=headers, timeout=10)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(post, range(20)))
    bodies = [r.json() for r in responses]
    assert {b["hits"] for b in bodies} == {1}
    assert sum(not b["replayed"] for b in bodies) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
    assert {b["served_by"]["instance"] for b in bodies} == {"web.1", "web.2"}
    assert redis_client.get(COUNTER) == "1"
    assert redis_client.llen(run_ledger("run9")) == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, '"unbalanced', "semi;colon", "ünïcode"])
def test_malformed_keys_get_400_with_a_reason_and_count_nothing(procs, redis_url, redis_client, key):
    web = procs.web(redis_url)
    response = requests.post(web.url + "/hits", headers={"Idempotency-Key": key.encode()})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]
    assert redis_client.get(COUNTER) is None


def test_two_key_headers_are_refused(procs, redis_url):
    web = procs.web(redis_url)
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    connection.putrequest("POST", "/hits")
    for key in ("a", "b"):  # requests cannot repeat a header; http.client can
        connection.putheader("Idempotency-Key", key)
    connection.putheader("Content-Length", "0")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400 and b"Idempotency-Key" in response.read()


def hammer(instances, run, threads=8, hits=150):
    """Concurrent keyed hits spread over the instances; the journal of what each client saw."""
    journal = []

    def client(c):
        events = []
        with requests.Session() as session:
            for seq in range(hits):
                key = f"{run}:c{c}:{seq}"
                events.append({"type": "invoke", "key": key, "time": time.time()})
                url = instances[(c + seq) % len(instances)].url
                response = session.post(url + "/hits", headers={"Idempotency-Key": key}, timeout=10)
                events.append({"type": "ok", "key": key, "time": time.time(), "number": response.json()["hits"]}
                              if response.ok else {"type": "info", "key": key, "time": time.time()})
        return events

    with ThreadPoolExecutor(threads) as pool:
        for events in pool.map(client, range(threads)):
            journal += events
    return journal


def test_atomic_mode_passes_the_checker(procs, redis_url, redis_client):
    instances = [procs.web(redis_url, name=f"web.{i}") for i in (1, 2)]
    start_run(redis_client, "atomic1", ttl=60)
    journal = hammer(instances, "atomic1")
    verdict = verdict_for(redis_client, "atomic1", journal)
    assert verdict.valid and not verdict.errors, verdict.to_dict()
    # A hit answered 503 (Redis slow on a loaded machine) is an unknown outcome, not an ok.
    assert verdict.ok + len(verdict.recovered) + len(verdict.not_applied) == 8 * 150, verdict.counts
    assert verdict.ok > 0

    # Once sealed, the run is judged as it ended, whatever moves the counter afterwards.
    source = Source(run="atomic1")
    read_redis(source, redis_client)
    seal_run(redis_client, "atomic1", verdict.stats["counter_end"], source.ledger_length)
    requests.post(instances[0].url + "/hits")
    requests.post(instances[0].url + "/hits", headers={"Idempotency-Key": "atomic1:late:1"})
    assert verdict_for(redis_client, "atomic1", journal).valid
    redis_client.hdel(run_record("atomic1"), "counter_end", "ledger_length")
    unsealed = verdict_for(redis_client, "atomic1", journal)
    assert unsealed.unexpected and unsealed.duplicated  # the late hits, seen without the seal


def test_seed_mode_hands_one_number_to_two_hits_and_the_checker_names_them(procs, redis_url, redis_client):
    instances = [procs.web(redis_url, name=f"web.{i}", HIT_MODE="seed") for i in (1, 2)]
    start_run(redis_client, "seed1", ttl=60)
    journal = hammer(instances, "seed1")
    verdict = verdict_for(redis_client, "seed1", journal)
    assert not verdict.valid
    shared = [item for item in verdict.duplicated if len(item.get("keys", ())) > 1]
    assert shared, verdict.to_dict()
    acked = {e["key"]: e["number"] for e in journal if e["type"] == "ok"}
    for item in shared:  # the named keys really were told the same number
        assert {acked[key] for key in item["keys"]} == {item["number"]}
    assert verdict.gaps, "every number read twice leaves another never handed out"


def test_local_mode_repeats_numbers_across_processes_and_the_checker_says_so(procs, redis_url, redis_client):
    instances = [procs.web(redis_url, name=f"web.{i}", HIT_MODE="local", WEB_WORKERS=1) for i in (1, 2)]
    start_run(redis_client, "local1", ttl=60)
    verdict = verdict_for(redis_client, "local1", hammer(instances, "local1", threads=4, hits=50))
    assert not verdict.valid
    assert "duplicated" in verdict.violations and "lost" in verdict.violations
    assert any(item.get("reason", "").startswith("counter") for item in verdict.lost), verdict.lost[:3]
