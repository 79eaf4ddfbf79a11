"""The session and upload workloads end to end: the right settings VALID under kill and reload chaos, the wrong ones INVALID.

Each run is scripts/check: a real honcho formation, real Locust visitors and
uploaders, real SIGKILLs and SIGHUPs, the composed checkers. The wrong settings
are the negative controls: a checker that stopped seeing vanished sessions or
lost uploads would let them pass, and these tests fail.
"""
import socket
import subprocess

import pytest
import requests

from bench.chaos.vocabulary import is_action
from bench.runfolder import CHAOS, PROXY_METRICS, SCRATCH, VERDICT_JSON, read_json, read_jsonl
from tests.procs import ROOT, process_env

CHAOS_ARGS = ["--web", "3", "--users", "6", "--chaos-rate", "1", "--chaos-mix", "kill=2,reload", "--seed", "5"]


def check(tmp_path, *args):
    out = tmp_path / "report"
    result = subprocess.run([str(ROOT / "scripts/check"), "--report-dir", str(out), *CHAOS_ARGS, *args],
                            env=process_env(), capture_output=True, text=True, timeout=600)
    return result, read_json(out / VERDICT_JSON), out


def chaos_applied(out):
    return {e["action"] for e in read_jsonl(out / CHAOS) if is_action(e) and e["outcome"] == "ok"}


@pytest.mark.parametrize("workload, store, sticky", [("hits,session,upload", "redis", ()), ("session", "cookie", ()),
                                                     ("session", "redis", ("--proxy-sticky", "--workers", "1"))],
                         ids=["redis", "cookie", "redis-sticky"])
def test_sessions_in_redis_or_a_signed_cookie_and_results_in_redis_survive_kills_and_reloads(tmp_path, workload, store,
                                                                                            sticky):
    result, verdict, out = check(tmp_path, "--workload", workload, "--session-store", store, "--duration", "10",
                                 *sticky)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    parts = verdict["stats"]["workloads"]
    assert list(parts) == workload.split(",") and {p["status"] for p in parts.values()} == {"valid"}
    assert parts["session"]["stats"]["visitors"] > 10 and parts["session"]["counts"]["ok"] > 20
    if "upload" in parts:
        assert parts["upload"]["counts"]["ok"] > 5 and parts["upload"]["stats"]["unread"] == 0
    assert {"kill", "reload"} <= chaos_applied(out)
    assert not (out / SCRATCH).exists()  # the formation's scratch folders go with it


def test_sessions_in_process_memory_vanish_and_uploads_on_its_disk_are_lost_each_named(tmp_path):
    # Both negative controls in one formation; each workload's part must fail on its own.
    result, verdict, _ = check(tmp_path, "--workload", "session,upload", "--session-store", "memory",
                               "--scratch", "keep", "--duration", "8")
    assert result.returncode == 1, result.stdout[-3000:]
    parts = verdict["stats"]["workloads"]
    assert "vanished" in parts["session"]["violations"] and parts["upload"]["violations"] == ["lost"], verdict["counts"]
    assert all(item["visitor"] and "401" in item["reason"] for item in verdict["vanished"])
    lost_uploads = [item for item in verdict["lost"] if item["workload"] == "upload"]
    assert lost_uploads and all(len(item["upload"]) == 32 and item["reason"] == "acknowledged but not found"
                                for item in lost_uploads)
    assert "INVALID: session: vanished; upload: lost" in result.stdout


def test_a_sticky_proxy_hides_sessions_in_process_memory_only_until_a_process_restarts(tmp_path):
    # One worker per instance: the proxy pins the instance, and gunicorn deals its requests over the workers.
    sticky = ("--workload", "session", "--session-store", "memory", "--proxy-sticky", "--workers", "1")
    result, verdict, out = check(tmp_path / "calm", *sticky, "--chaos-rate", "0", "--duration", "10")
    assert result.returncode == 0, result.stdout[-3000:]
    visitors = verdict["stats"]["workloads"]["session"]["stats"]["visitors"]
    assert visitors > 10 and "(sticky)" in result.stdout
    pins = read_json(out / PROXY_METRICS)["end"]["totals"]["sticky"]
    # Each visitor pinned once, at sign-in, then kept there. A sign-in in flight at the stop, one per user at most,
    # may be pinned without its visitor being counted, or counted without its pin: a few either way.
    assert abs(pins["pins"] - visitors) <= 6 and pins["repins"] == 0 and pins["hits"] > 2 * visitors, pins
    # The negative control: a killed or reloaded worker takes its visitors' sessions with it, and the checker names them.
    result, verdict, out = check(tmp_path / "chaos", *sticky, "--duration", "12")
    assert result.returncode == 1, result.stdout[-3000:]
    assert verdict["stats"]["workloads"]["session"]["violations"] == ["vanished"], verdict["counts"]
    assert verdict["vanished"] and all(item["visitor"] and "401" in item["reason"] for item in verdict["vanished"])
    assert {"kill", "reload"} & chaos_applied(out)


def test_proxy_sticky_is_refused_in_front_of_another_front_door():
    result = subprocess.run([str(ROOT / "scripts/check"), "--proxy-sticky", "--front", "nginx"], env=process_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--proxy-sticky is this proxy's setting" in result.stderr


def test_an_unknown_workload_is_refused_up_front_with_the_list():
    result = subprocess.run([str(ROOT / "scripts/check"), "--workload", "hits,carts"], env=process_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "choose from hits, session, upload" in result.stderr


def test_gunicorn_refuses_bad_cookies_ids_and_oversized_uploads_before_reading_them(procs, redis_url, tmp_path):
    web = procs.web(redis_url, UPLOAD_MAX_BYTES=1_000_000, SCRATCH_DIR=tmp_path / "scratch")
    forged = requests.get(web.url + "/cart", cookies={"session": "forged"}, timeout=30)
    assert forged.status_code == 401 and "unknown or expired" in forged.json()["error"]
    assert requests.get(web.url + "/uploads/not-an-id", timeout=30).status_code == 400
    assert requests.get(web.url + "/uploads/" + "0" * 32, timeout=30).status_code == 404
    # 100 MB announced, not one byte of it sent: the answer can only come before the body is read.
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as conn:
        conn.sendall(b"POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        answer = b""
        while b"}" not in answer and (chunk := conn.recv(65536)):  # the head and the JSON may come apart
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"UPLOAD_MAX_BYTES" in answer
