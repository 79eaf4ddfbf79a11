"""The chaos monkey against real gunicorn instances, a real redis-server and real honcho."""
import json
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests

from bench.chaos import ChaosMonkey
from bench.chaos.engine import next_due
from tests.procs import free_port, process_env, wait_until
from common.registry import Registry

ALL_ACTIONS = "kill,term,reload,rolling,freeze,scale"


@pytest.fixture
def monkeys(redis_client):
    """Makes monkeys on the test's Redis, and stops each one, thawing its workers, before the
    processes are cleaned up."""
    made = []

    def make(**options):
        monkey = ChaosMonkey(redis_client, **{"seed": 1, **options})
        made.append(monkey)
        return monkey

    yield make
    for monkey in made:
        monkey.stop()


def start_web(procs, redis_url, name="web.1", workers=2):
    """A gunicorn instance with all its workers booted (it serves as soon as the first one is)."""
    web = procs.web(redis_url, name=name, WEB_WORKERS=workers)
    wait_until(lambda: len(worker_pids(web)) == workers, what=f"{workers} workers of {name}")
    return web


def worker_pids(web):
    return {proc.pid for proc in web.workers}


def status(pid):
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return "gone"


def wait_stopped(pid):
    """SIGSTOP takes effect when the kernel next schedules the process: soon, not at once."""
    wait_until(lambda: status(pid) == psutil.STATUS_STOPPED, timeout=2, what=f"{pid} stopped")


def events_of(monkey, action, count=1, timeout=60):  # generous: a loaded machine, parallel workers
    return wait_until(lambda: len(found := [e for e in monkey.events if e["action"] == action]) >= count and found,
                      timeout=timeout, what=f"{count} {action} event(s)")


@pytest.mark.parametrize("action, signal_name", [("kill", "SIGKILL"), ("term", "SIGTERM")])
def test_kill_and_term_replace_the_worker_and_record_recovery(procs, redis_url, monkeys, action, signal_name):
    web = start_web(procs, redis_url, workers=2)
    before = worker_pids(web)
    monkey = monkeys()
    event = monkey.act(action)
    assert (event["outcome"], event["target"], event["signal"]) == ("ok", "web.1", signal_name)
    assert event["pid"] in before
    [recovery] = events_of(monkey, "recovery")
    assert (recovery["outcome"], recovery["after"], recovery["pid"]) == ("ok", action, event["pid"])
    assert 0 < recovery["recovery_s"] < 30
    print(f"{action}: serving again after {recovery['recovery_s']}s")
    after = worker_pids(web)
    assert event["pid"] not in after and len(after) == 2
    assert set(recovery["replacement"]) <= after - before
    assert recovery["served_by"] in after
    assert requests.get(web.url + "/healthz", timeout=5).json()["served_by"]["pid"] in after
    assert monkey.summary()["recovery"][action]["count"] == 1


def test_reload_replaces_every_worker_and_keeps_the_master(procs, redis_url, monkeys):
    web = start_web(procs, redis_url, workers=2)
    before = worker_pids(web)
    monkey = monkeys()
    event = monkey.act("reload")
    assert (event["outcome"], event["pid"], event["signal"]) == ("ok", web.popen.pid, "SIGHUP")
    [recovery] = events_of(monkey, "recovery")
    assert recovery["outcome"] == "ok"
    assert not worker_pids(web) & before
    assert web.popen.poll() is None
    assert requests.get(web.url + "/readyz", timeout=5).ok


def test_rolling_reloads_each_instance_once_the_previous_serves_again(procs, redis_url, monkeys):
    webs = {name: start_web(procs, redis_url, name) for name in ("web.1", "web.2")}
    before = {name: worker_pids(web) for name, web in webs.items()}
    monkey = monkeys()
    event = monkey.act("rolling")
    assert (event["outcome"], event["order"]) == ("ok", ["web.1", "web.2"])
    first, second = events_of(monkey, "recovery", count=2)
    reloads = [e for e in monkey.events if e["action"] == "reload"]
    assert [(e["target"], e["part_of"]) for e in reloads] == [("web.1", "rolling"), ("web.2", "rolling")]
    assert (first["target"], second["target"]) == ("web.1", "web.2")
    assert first["outcome"] == second["outcome"] == "ok"
    assert reloads[1]["time"] >= first["time"], "web.2 was reloaded before web.1 served again"
    for name, web in webs.items():
        assert not worker_pids(web) & before[name]


def test_freeze_stops_a_worker_without_blocking_then_continues_it(procs, redis_url, monkeys):
    web = start_web(procs, redis_url, workers=2)
    monkey = monkeys(freeze_s=2.0)
    began = time.monotonic()
    event = monkey.act("freeze")
    assert time.monotonic() - began < 2.0, "the freeze blocked the caller"
    assert (event["outcome"], event["signal"]) == ("ok", "SIGSTOP")
    assert event["pid"] in worker_pids(web)
    wait_stopped(event["pid"])
    [thaw] = events_of(monkey, "thaw", timeout=15)
    assert (thaw["outcome"], thaw["pid"], thaw["signal"]) == ("ok", event["pid"], "SIGCONT")
    assert thaw["frozen_s"] >= 1.9
    wait_until(lambda: status(event["pid"]) in (psutil.STATUS_SLEEPING, psutil.STATUS_RUNNING), timeout=5,
               what="the worker running again")
    assert requests.get(web.url + "/healthz", timeout=5).ok


def test_stop_thaws_a_frozen_worker_at_once(procs, redis_url, monkeys):
    start_web(procs, redis_url, workers=1)
    monkey = monkeys(freeze_s=600)
    event = monkey.act("freeze")
    assert event["outcome"] == "ok", event
    wait_stopped(event["pid"])
    monkey.stop()
    assert status(event["pid"]) != psutil.STATUS_STOPPED
    [thaw] = [e for e in monkey.events if e["action"] == "thaw"]
    assert thaw["outcome"] == "ok" and thaw["frozen_s"] < 600


def test_scale_adds_and_removes_a_worker_within_bounds(procs, redis_url, monkeys):
    web = start_web(procs, redis_url, workers=1)
    monkey = monkeys(max_workers=2)
    counts = []
    for expected_signal, expected_count in [("SIGTTIN", 2), ("SIGTTOU", 1)] * 2:
        event = monkey.act("scale")
        assert (event["outcome"], event["signal"], event["pid"]) == ("ok", expected_signal, web.popen.pid)
        counts.append(wait_until(lambda: len(worker_pids(web)) == expected_count and expected_count, timeout=15,
                                 what=f"{expected_count} worker(s)"))
    assert counts == [2, 1, 2, 1]
    event = monkeys(max_workers=1).act("scale")
    assert event["outcome"].startswith("skipped:") and len(worker_pids(web)) == 1


def bystander(procs):
    """A process tree that is not a web instance: a shell with a sleeping child."""
    shell = procs.spawn(["bash", "-c", "sleep 300 & wait"], process_env())
    wait_until(lambda: psutil.Process(shell.pid).children(), what="the bystander's child")
    return [shell.pid] + [child.pid for child in psutil.Process(shell.pid).children()]


def test_never_signals_unregistered_stale_or_foreign_processes(procs, redis_server, redis_client, monkeys):
    web = start_web(procs, redis_server.url, workers=2)
    unregistered, stale = bystander(procs), bystander(procs)
    registry = Registry(redis_client, ttl=60)
    # An entry left by a dead instance whose pid now belongs to another tree, and one naming Redis.
    registry.register({"name": "web.stale", "address": f"127.0.0.1:{free_port()}", "pid": stale[0],
                       "host": socket.gethostname(), "started": time.time()})
    registry.register({"name": "web.redis", "address": f"127.0.0.1:{redis_server.port}",
                       "pid": redis_server.popen.pid, "host": socket.gethostname(), "started": time.time()})
    untouchable = set(unregistered + stale + [redis_server.popen.pid])
    monkey = monkeys(rate=20, mix=ALL_ACTIONS, freeze_s=0.5)
    monkey.start()
    # Enough actions to have met every kind of target, however slowly a loaded machine makes them.
    wait_until(lambda: len([e for e in monkey.events if e["outcome"] == "ok"]) > 20, timeout=120,
               what="more than 20 actions made")
    monkey.stop()
    events = monkey.events
    assert {e["target"] for e in events} <= {None, "web.1"}
    assert not {e["pid"] for e in events} & untouchable
    for pid in untouchable:
        assert status(pid) in (psutil.STATUS_SLEEPING, psutil.STATUS_RUNNING), pid
    assert redis_client.ping() and web.popen.poll() is None


def fire_times(durations, interval=1.0):
    """When the schedule's turns fire, on a clock of their own, when the actions take these seconds each."""
    now, due, fired = 0.0, interval, []
    for seconds in durations:
        now = max(now, due)  # the schedule waits until the turn is due
        fired.append(now)
        now += seconds
        due = next_due(due, interval, now)
    return fired


@pytest.mark.fast
def test_the_schedule_makes_up_for_a_slow_action_but_never_bursts_after_a_stall():
    assert fire_times([0.1] * 4) == [1.0, 2.0, 3.0, 4.0]
    # An action of 1.5 intervals: the next fires as soon as it ends, and the run is back on its beat.
    assert fire_times([0.1, 1.5, 0.1, 0.1, 0.1]) == [1.0, 2.0, 3.5, 4.0, 5.0]
    # Actions slower than the interval, one after another: each turn fires as soon as the last ends.
    assert fire_times([1.2] * 10)[-1] == pytest.approx(1.0 + 9 * 1.2)
    # A stall of five intervals: one interval is made up at once, the three before it are not.
    assert fire_times([0.0, 5.0, 0.0, 0.0, 0.0]) == [1.0, 2.0, 7.0, 7.0, 8.0]


def test_same_seed_same_actions_and_targets(procs, redis_url, monkeys):
    webs = [start_web(procs, redis_url, name) for name in ("web.1", "web.2")]
    before = [worker_pids(web) for web in webs]

    def sequence(seed):
        monkey = monkeys(seed=seed, mix="kill=3,term,reload,freeze,scale", dry_run=True)
        return [(e["action"], e["target"], e["pid"], e.get("signal")) for e in (monkey.act() for _ in range(30))]

    first = sequence(7)
    assert {action for action, *_ in first} == {"kill", "term", "reload", "freeze", "scale"}
    assert {target for _, target, *_ in first} == {"web.1", "web.2"}
    assert sequence(7) == first
    assert sequence(8) != first
    assert [worker_pids(web) for web in webs] == before, "a dry run signalled something"


def test_a_formation_under_honcho_survives_every_action(procs, redis_client, monkeys, tmp_path):
    port = redis_client.connection_pool.connection_kwargs["port"]
    honcho = procs.honcho("web=2", {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "WEB_WORKERS": 2},
                          tmp_path / "honcho.log", processes=["web"])
    registry = Registry(redis_client)
    masters = wait_until(lambda: len(registry.instances()) == 2 and {e["pid"] for e in registry.instances()},
                         timeout=30, what="2 registered instances")
    log = tmp_path / "chaos.jsonl"
    monkey = monkeys(rate=5, mix=ALL_ACTIONS, seed=13, freeze_s=1.0, log_path=log)  # seed 13: all six in the first 6
    monkey.start()
    time.sleep(5)
    monkey.stop()
    summary = monkey.summary()
    print(json.dumps(summary))
    assert honcho.poll() is None, "honcho stopped the formation"
    assert {e["pid"] for e in registry.instances()} == masters
    for action in ALL_ACTIONS.split(","):
        assert summary["actions"][action].get("ok"), f"no successful {action} in {summary}"
    kills = [e for e in monkey.events if e["action"] in ("kill", "term") and e["outcome"] == "ok"]
    recoveries = [e for e in monkey.events if e["action"] == "recovery" and e["after"] in ("kill", "term")]
    assert sorted(e["pid"] for e in recoveries) == sorted(e["pid"] for e in kills)
    assert {e["outcome"] for e in recoveries} == {"ok"}
    for entry in registry.instances():
        assert requests.get(f"http://{entry['address']}/readyz", timeout=5).ok
        assert all(status(w.pid) != psutil.STATUS_STOPPED for w in psutil.Process(entry["pid"]).children())
    assert [json.loads(line) for line in log.read_text().splitlines()] == monkey.events


# Locust embeds the monkey after gevent's monkey-patching, which turns its threads into greenlets.
UNDER_GEVENT = """
from gevent import monkey; monkey.patch_all()
import json, sys, time
from bench.chaos import ChaosMonkey
from common.redis_client import connect
apart_url = sys.argv[1] if sys.argv[2:] == ["apart"] else None
chaos = ChaosMonkey(connect(sys.argv[1]), rate=5, mix="kill,freeze", seed=1, freeze_s=0.5, apart_url=apart_url)
chaos.start()
# Until a kill and a freeze were made, not for a fixed time: a slow start (the schedule apart is a new process) or a
# loaded machine makes fewer turns in seconds than it should.
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not all(chaos.summary()["actions"].get(a, {}).get("ok") for a in ("kill", "freeze")):
    time.sleep(0.1)
chaos.stop()
print(json.dumps(chaos.summary()))
"""


@pytest.mark.parametrize("where", ["embedded", "apart"])
def test_works_under_gevent_embedded_or_with_its_schedule_apart(procs, redis_url, where):
    start_web(procs, redis_url, workers=2)
    done = subprocess.run([sys.executable, "-c", UNDER_GEVENT, redis_url, where], env=process_env(),
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["actions"]["kill"]["ok"] == summary["recovery"]["kill"]["count"] >= 1
    assert summary["actions"]["freeze"]["ok"] == summary["actions"]["thaw"]["ok"] >= 1


def chaos_children():
    return [child for child in psutil.Process().children() if "bench.chaos" in child.cmdline()]


def test_a_schedule_apart_runs_in_a_process_of_its_own_and_its_events_come_back(procs, redis_url, monkeys, tmp_path):
    web = start_web(procs, redis_url, workers=2)
    log = tmp_path / "chaos.jsonl"
    monkey = monkeys(rate=4, mix="kill,freeze", freeze_s=0.5, log_path=log, apart_url=redis_url).start()
    [child] = chaos_children()
    events_of(monkey, "recovery", count=2)
    events_of(monkey, "thaw")
    pressed = monkey.act("term", "web.1", manual=True)  # a button still acts here, while the schedule runs there
    assert pressed["outcome"] == "ok" and pressed["manual"]
    monkey.stop()
    assert not child.is_running() and not chaos_children()
    events = monkey.events
    assert [json.loads(line) for line in log.read_text().splitlines()] == events, "each event logged once"
    kills = sorted(e["pid"] for e in events if e["action"] == "kill" and e["outcome"] == "ok")
    assert kills == sorted(e["pid"] for e in events if e["action"] == "recovery" and e["after"] == "kill")
    assert 0 < monkey.summary()["scheduled_s"] and all(status(w.pid) != psutil.STATUS_STOPPED for w in web.workers)


def test_cli_lifeline_stops_it_once_stdin_closes(procs, redis_url):
    start_web(procs, redis_url, workers=1)
    cli = subprocess.Popen(chaos_cli("--rate", "2", "--mix", "kill", "--lifeline", "--redis-url", redis_url),
                           env=process_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert cli.stdout.readline().startswith("chaos: 2 action/s")
        cli.stdin.close()  # as when the engine that started it is gone, however it ended
        assert cli.wait(timeout=30) == 0
        assert cli.stdout.read().splitlines()[-1].startswith("chaos: summary ")
    finally:
        cli.kill()
        cli.wait()


def chaos_cli(*args):
    return [sys.executable, "-m", "bench.chaos", *args]


def test_cli_runs_for_its_duration_and_logs_every_event(procs, redis_url, tmp_path):
    start_web(procs, redis_url, workers=2)
    log = tmp_path / "chaos.jsonl"
    done = subprocess.run(chaos_cli("--rate", "4", "--mix", "kill,freeze", "--seed", "2", "--freeze-s", "0.5",
                                    "--duration", "3", "--log", str(log), "--redis-url", redis_url),
                          env=process_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "seed 2" in lines[0] and lines[-1].startswith("chaos: summary ")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(events) == len(lines) - 2 and len([e for e in events if e["action"] in ("kill", "freeze")]) >= 8
    assert all({"time", "action", "target", "pid", "outcome"} <= set(e) for e in events)


def test_cli_sigterm_thaws_the_frozen_worker_and_exits_cleanly(procs, redis_url, tmp_path):
    start_web(procs, redis_url, workers=2)
    log = tmp_path / "chaos.jsonl"
    cli = procs.spawn(chaos_cli("--rate", "5", "--mix", "freeze", "--freeze-s", "600", "--log", str(log),
                                "--redis-url", redis_url), process_env())
    frozen = wait_until(lambda: [json.loads(line)["pid"] for line in log.read_text().splitlines()], timeout=15,
                        what="a freeze")
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=120) == 0  # thawing and a last journal line: quick, unless the machine is loaded
    assert all(status(pid) != psutil.STATUS_STOPPED for pid in frozen)
    thawed = [json.loads(line)["pid"] for line in log.read_text().splitlines() if '"thaw"' in line]
    assert set(frozen) <= set(thawed)


def test_cli_once_kill_reports_the_recovery(procs, redis_url):
    start_web(procs, redis_url, workers=1)
    done = subprocess.run(chaos_cli("--redis-url", redis_url, "once", "kill", "--target", "web.1"),
                          env=process_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    kill, recovery = done.stdout.splitlines()
    assert " kill " in kill and " web.1 " in kill and " ok " in kill
    assert " recovery " in recovery and "recovery_s=" in recovery


@pytest.mark.parametrize("rate, expected", [("0", "chaos: off"), ("5", "recovery")])
def test_procfile_chaos_type_idles_unless_asked(procs, redis_client, tmp_path, rate, expected):
    port = redis_client.connection_pool.connection_kwargs["port"]
    log = tmp_path / "honcho.log"
    honcho = procs.honcho("web=1,chaos=1", {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "WEB_WORKERS": 1,
                                            "CHAOS_RATE": rate, "CHAOS_MIX": "kill", "CHAOS_SEED": 1},
                          log, processes=["web", "chaos"])
    wait_until(lambda: expected in log.read_text(), timeout=30, what=f"{expected!r} in honcho's log")
    if rate == "0":
        time.sleep(2)  # idle, nothing to count: honcho would stop everything if the chaos process exited
    else:  # three decisions made, not a sleep: a chaos process about to exit would have, and honcho with it
        wait_until(lambda: log.read_text().count(" kill ") >= 3, timeout=30, what="three chaos decisions")
    assert honcho.poll() is None, log.read_text()
    assert (" kill " in log.read_text()) == (rate != "0")


def test_buttons_do_not_shift_a_seeded_schedule_and_are_marked_manual(procs, redis_url, monkeys):
    webs = [start_web(procs, redis_url, name) for name in ("web.1", "web.2")]

    def scheduled(seed, press):
        monkey = monkeys(seed=seed, mix="kill=3,term,reload,freeze,scale", dry_run=True)
        picked = []
        for step in range(20):
            if press and step % 3 == 0:  # a person presses a button between scheduled actions
                pid = sorted(worker_pids(webs[1]))[0]
                event = monkey.act("kill", "web.2", manual=True, pid=pid)
                assert (event["manual"], event["target"], event["pid"]) == (True, "web.2", pid)
            event = monkey.act()
            assert "manual" not in event
            picked.append((event["action"], event["target"], event["pid"], event.get("signal")))
        return picked

    assert scheduled(7, press=True) == scheduled(7, press=False)


def test_a_manual_freeze_lasts_the_seconds_asked_and_its_thaw_says_after(procs, redis_url, monkeys):
    start_web(procs, redis_url)
    monkey = monkeys(freeze_s=600)
    event = monkey.act("freeze", "web.1", manual=True, seconds=1.0)
    assert (event["duration_s"], event["manual"]) == (1.0, True)
    [thaw] = events_of(monkey, "thaw", timeout=15)
    assert (thaw["after"], thaw["manual"], thaw["pid"]) == ("freeze", True, event["pid"])
    assert 0.9 <= thaw["frozen_s"] < 10
