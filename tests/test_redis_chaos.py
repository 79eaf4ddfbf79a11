"""The backing service under fire: the chaos monkey's redis-* actions on a real supervised Valkey, and the checker
judging persistence.

The actions run against ``python -m backing`` with a real web instance and proxy behind it; the checks are whole
``scripts/check`` runs. The negative control: with ``--redis-persistence none`` the same chaos must end INVALID,
naming acknowledged hits lost and numbers handed out twice, so a checker that stopped seeing a forgetful Redis fails.
"""
import subprocess
import sys

import psutil
import pytest
import redis
import requests

from backing.server import default_binary
from bench.chaos import ChaosMonkey
from bench.chaos.vocabulary import BACKING_ACTIONS
from bench.runfolder import CHAOS, FORMATION_LOG, REPORT_HTML, VERDICT_JSON, read_json, read_jsonl
from tests.procs import ROOT, free_port, process_env, wait_until
from tests.support import running, start_backing


@pytest.fixture
def backed(procs, tmp_path):
    """A supervised server, one web instance and the proxy; the monkey's client on that Redis."""
    service = start_backing(procs, tmp_path)
    procs.web(service.url, name="web.1", WEB_WORKERS=1)
    proxy = procs.proxy(service.url, PROXY_ACCESS_LOG=0)
    wait_until(lambda: requests.get(proxy.url + "/hits", timeout=2).ok, timeout=30, what="the proxy serving")
    made = []

    def monkey(**options):
        made.append(ChaosMonkey(service.client(), proxy_url=proxy.url, **{"seed": 1, "freeze_s": 1, "outage_s": 1.5,
                                                                          **options}))
        return made[-1]

    yield service, proxy, monkey
    for each in made:
        each.stop()


def follow_ups(monkey, action):
    return [e for e in monkey.events if e.get("after") == action]


def test_every_action_breaks_the_server_and_times_its_recovery_to_a_hit_served(backed):
    """One formation for all four, in turn (each starts only once the last one's recovery is recorded)."""
    service, proxy, make = backed
    service.client().set("kept", 1)
    monkey, supervisor = make(), service.popen.pid
    for action in BACKING_ACTIONS:
        server = service.server_pid()
        event = monkey.act(action)
        assert event["outcome"] == "ok" and event["pid"] == server and event["supervisor"] == supervisor, event
        wait_until(lambda: not monkey.busy(), timeout=60, what=f"the follow-ups of {action}")
        recovery = [e for e in follow_ups(monkey, action) if e["action"] == "recovery"]
        assert len(recovery) == 1 and recovery[0]["outcome"] == "ok", monkey.events
        recovery = recovery[0]
        assert recovery["outage_began"] == event["time"] < recovery["outage_ended"]
        assert recovery["recovery_s"] >= 0 and requests.get(proxy.url + "/hits", timeout=5).ok
        if action in ("redis-freeze", "redis-outage"):
            end = {"redis-freeze": "thaw", "redis-outage": "restore"}[action]
            assert [e["action"] for e in follow_ups(monkey, action)] == [end, "recovery"]
            assert recovery["down_s"] >= event["duration_s"]
        assert (recovery["server"] == server) is (action == "redis-freeze"), "a freeze keeps its server"
        assert service.server_pid() == recovery["server"] and service.popen.poll() is None, "the supervisor lives"
        assert service.client().get("kept") == "1", "REDIS_PERSISTENCE=always keeps every acknowledged write"
        assert not (service.data / "hold").exists()
    assert "holding the server down until" in service.output() and "hold over" in service.output()
    assert "killed by SIGKILL" in service.output() and "exited with rc=0" in service.output()

    # Stopping the monkey ends a lasting fault at once: a frozen server runs again, a hold is lifted.
    frozen = make(freeze_s=60)
    server = service.server_pid()
    assert frozen.act("redis-freeze")["outcome"] == "ok"
    wait_until(lambda: psutil.Process(server).status() == psutil.STATUS_STOPPED, timeout=5, what="frozen")
    assert frozen.act("redis-kill")["outcome"].startswith("skipped: the last backing fault"), "one at a time"
    frozen.stop()
    assert psutil.Process(server).status() != psutil.STATUS_STOPPED and service.client().ping()
    held = make(outage_s=60)
    assert held.act("redis-outage")["outcome"] == "ok"
    held.stop()
    assert not (service.data / "hold").exists()
    service.serving_pid(other_than=server)


def test_never_signals_a_server_that_is_not_a_supervisors_child_nor_another_formations(procs, tmp_path):
    port = free_port()
    bare = procs.spawn([default_binary(), "--port", str(port), "--save", "", "--appendonly", "no"], process_env())
    client = redis.Redis(port=port, socket_timeout=2)
    wait_until(client.ping, what="a bare server")
    other = start_backing(procs, tmp_path, name="other")
    other_server = other.server_pid()
    monkey = ChaosMonkey(client, seed=1)
    try:
        for action in BACKING_ACTIONS:
            assert monkey.act(action)["outcome"].startswith("skipped: no server of a python -m backing"), action
    finally:
        monkey.stop()
    assert bare.poll() is None and client.ping()
    assert other.server_pid() == other_server and running(other_server) and other.popen.poll() is None


@pytest.mark.fast
def test_backing_actions_leave_the_web_actions_of_every_other_turn_as_they_were():
    """Their own stream: a seed's web sequence is the same with or without backing actions in the mix."""
    def turns(mix):
        monkey = ChaosMonkey(redis.Redis(port=free_port()), mix=mix, seed=7)  # never connected: names only
        return [monkey._next_action() for _ in range(300)]
    web = turns("kill=3,term,reload,freeze")
    mixed = turns("kill=3,term,reload,freeze,redis-kill,redis-freeze")
    assert {"redis-kill", "redis-freeze"} <= set(mixed) and 40 < sum(a in BACKING_ACTIONS for a in mixed) < 140
    assert all(m == w for m, w in zip(mixed, web) if m not in BACKING_ACTIONS)
    assert turns("redis-kill") == ["redis-kill"] * 300


def check(tmp_path, persistence):
    out = tmp_path / persistence
    result = subprocess.run(
        [str(ROOT / "scripts/check"), "--report-dir", str(out), "--web", "4", "--duration", "20", "--chaos-rate", "1",
         "--chaos-mix", "kill,redis-kill,redis-freeze", "--seed", "2", "--redis-persistence", persistence],
        env=process_env(), capture_output=True, text=True, timeout=600)
    return result, read_json(out / VERDICT_JSON), out


def up_throughout(out):
    """honcho stopped nothing before the harness asked it to (its first 'sending SIGTERM' follows the harness's
    SIGTERM, not a process that ended), and gunicorn timed no worker out."""
    lines = (out / FORMATION_LOG).read_text(errors="replace").splitlines()
    stop = next((n for n, line in enumerate(lines) if "sending SIGTERM" in line), 0)
    return (stop > 0 and "SIGTERM received" in lines[stop - 1] and not any(" stopped (rc=" in ln for ln in lines[:stop])
            and not any("WORKER TIMEOUT" in line for line in lines))


@pytest.mark.parametrize("persistence", ["always", "none"])
def test_redis_crashes_under_load_lose_nothing_with_always_and_convict_a_redis_that_forgets(tmp_path, persistence):
    result, verdict, out = check(tmp_path, persistence)
    events = read_jsonl(out / CHAOS)
    crashes = [e for e in events if e["action"] == "redis-kill" and e["outcome"] == "ok"]
    recoveries = [e for e in events if e["action"] == "recovery" and e.get("after") in BACKING_ACTIONS]
    assert len(crashes) >= 3 and len(recoveries) >= 3 and all(e["outcome"] == "ok" for e in recoveries), events
    assert len({e["supervisor"] for e in crashes}) == 1, "one supervisor all along"
    assert up_throughout(out), (out / FORMATION_LOG).read_text(errors="replace")[-3000:]
    restarts = [line for line in (out / FORMATION_LOG).read_text(errors="replace").splitlines()
                if "backing: server pid" in line and "killed by SIGKILL" in line]
    assert len(restarts) >= 3 and all(" now on port" in line for line in restarts), "a killed server: no back-off"
    assert "Backing-service outages" in (out / REPORT_HTML).read_text()
    if persistence == "always":
        assert result.returncode == 0, result.stdout[-3000:]
        assert verdict["status"] == "valid" and verdict["ok"] > 300, verdict["counts"]
        outcomes = verdict["stats"]["outcomes"]
        assert outcomes.get("info", 0) == outcomes.get("fail", 0) == 0, "no hit failed after its retries"
    else:
        assert result.returncode == 1, result.stdout[-3000:]
        assert verdict["status"] == "invalid", verdict["counts"]
        assert any(item["reason"].startswith("acknowledged") for item in verdict["lost"]), verdict["lost"][:3]
        assert any(item["reason"].startswith("number acknowledged to") for item in verdict["duplicated"])
        assert any("is gone: Redis forgot it" in reason for reason in verdict["inconclusive"]), verdict["inconclusive"]
        assert "INVALID" in result.stdout and "Redis forgot it" in result.stdout


def test_the_chaos_cli_breaks_the_formations_redis_once(procs, tmp_path):
    service = start_backing(procs, tmp_path)
    server = service.server_pid()
    result = subprocess.run([sys.executable, "-m", "bench.chaos", "--redis-url", service.url, "once", "redis-kill"],
                            cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "redis-kill" in result.stdout and "recovery" in result.stdout and "down_s=" in result.stdout
    service.serving_pid(other_than=server)
    assert f"server pid {server} killed by SIGKILL" in service.output() and service.popen.poll() is None
