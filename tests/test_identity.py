"""The formation proves who it is: one identity in its Redis and on every web answer, compared by the readers;
and the Formation page, which shows the formation before any run.

Real backing supervisors, gunicorn, proxy and Locust. The supervisor writes the identity at every start of its
server, so a Redis that forgot everything (``REDIS_PERSISTENCE=none``) gets the same one back (its run still ends
INVALID: that control is tests/test_redis_chaos.py's). The negative controls: a Locust run whose ``--redis-url`` is
another formation's Redis ends NO VERDICT at once, naming both identities; ``scripts/ps`` reading a Redis where an
instance of another formation registered exits 2 naming both; Locust's UI on another formation's Redis says so
on the page and answers ``POST /swarm`` with ``success: false`` (Locust alone says ``success: true``). Before any
run the page's state has every card and the count that runs (3, not the form's old 4). A UI port already taken
is one line and exit status 2, not a traceback.
"""
import datetime
import socket
import subprocess
import sys

import pytest
import redis
import requests

from bench.load.identity import compare
from common.registry import Registry
from common.schema import FORMATION_HEADER, FORMATION_KEY
from common.settings import formation_id
from tests.procs import ROOT, VENV_BIN, free_port, process_env, wait_until

LOCUST = [str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/locustfile.py")]


def backing(procs, folder, **env):
    """``python -m backing`` on a free port, once its server holds an identity: (url, client, supervisor)."""
    port = free_port()
    popen = procs.spawn([sys.executable, "-m", "backing"],
                        process_env(PORT_REDIS=port, REDIS_DATA=folder, **env), folder.with_suffix(".log"))
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=2)
    wait_until(lambda: client.get(FORMATION_KEY), timeout=30, what=f"the identity in the Redis on {port}")
    return f"redis://127.0.0.1:{port}/0", client, popen


def logged_at(line):
    """The time of a Locust log line, ``[2026-12-04 13:02:11,348] ...``, in seconds."""
    stamp = datetime.datetime.strptime(line[1:line.index("]")], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp()


@pytest.mark.fast
def test_the_comparison_names_both_identities_and_a_bad_setting_is_refused():
    assert compare("f1", "f1", "http://p", "redis://r") is None
    assert compare(None, None, "http://p", "redis://r") is None, "no identity anywhere: nothing to refuse"
    line = compare("f1", None, "http://p", "redis://r", who="web.1")
    assert "is f1 (web.1 says so)" in line and "redis://r holds no formation identity" in line and "\n" not in line
    with pytest.raises(ValueError, match="FORMATION_ID must be"):
        formation_id({"FORMATION_ID": "a b"})


def test_one_identity_from_the_supervisor_survives_a_restart_that_forgot_everything(procs, tmp_path):
    url, client, _ = backing(procs, tmp_path / "redis", REDIS_PERSISTENCE="none")
    made = client.get(FORMATION_KEY)
    web = procs.web(url, name="web.1", WEB_WORKERS=1)
    answer = requests.get(web.url + "/hits", timeout=5)
    assert answer.headers[FORMATION_HEADER] == made, "every answer names the formation"
    wait_until(lambda: [e.get("formation") for e in Registry(client).instances()] == [made], timeout=15,
               what="the registry entry with the identity")

    server = client.info("server")["process_id"]
    subprocess.run(["kill", "-KILL", str(server)], check=True)
    wait_until(lambda: client.info("server")["process_id"] != server and client.get(FORMATION_KEY), timeout=30,
               what="the server restarted, empty, and given its identity back")
    assert client.get(FORMATION_KEY) == made, "a Redis that forgot is not another Redis"
    assert requests.get(web.url + "/hits", timeout=5).headers[FORMATION_HEADER] == made


def test_a_given_formation_id_is_the_one_written_and_reported(procs, tmp_path):
    url, client, _ = backing(procs, tmp_path / "redis", FORMATION_ID="class-a")
    assert client.get(FORMATION_KEY) == "class-a"
    web = procs.web(url, name="web.1", WEB_WORKERS=1, FORMATION_ID="class-a")
    assert requests.get(web.url + "/healthz", timeout=5).headers[FORMATION_HEADER] == "class-a"


def test_a_locust_run_reading_another_formations_redis_ends_no_verdict_at_once_naming_both(procs, tmp_path):
    ours, our_client, _ = backing(procs, tmp_path / "ours")
    theirs, their_client, _ = backing(procs, tmp_path / "theirs")
    procs.web(ours, name="web.1", WEB_WORKERS=1)
    proxy = procs.proxy(ours)
    ours_id, theirs_id = our_client.get(FORMATION_KEY), their_client.get(FORMATION_KEY)
    assert ours_id != theirs_id
    result = subprocess.run(
        [*LOCUST, "--headless", "--only-summary", "--host", proxy.url, "--redis-url", theirs,
         "--report-dir", str(tmp_path / "report"), "-u", "2", "-r", "2", "-t", "120s"], env=process_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    [line] = [line for line in out.splitlines() if "wrong Redis" in line]
    assert ours_id in line and theirs_id in line and theirs in line and "no verdict" in line, line
    # From Locust's first line to the refusal (its own start-up, imports and all, is not the check's).
    took = logged_at(line) - logged_at(next(line for line in out.splitlines() if "Starting Locust" in line))
    assert took < 10, f"stopped {took:.1f}s into a 120 s run: it must stop at the start"
    print(f"NO VERDICT {took:.2f}s after Locust started")


def test_ps_refuses_an_instance_of_another_formation_in_its_redis(procs, tmp_path):
    url, client, _ = backing(procs, tmp_path / "redis", FORMATION_ID="ours")
    procs.web(url, name="web.1", WEB_WORKERS=1)
    ps = [str(ROOT / "scripts/ps"), "--redis-url", url]
    fine = subprocess.run(ps, env=process_env(), capture_output=True, text=True, timeout=60)
    assert fine.returncode == 0 and "formation ours" in fine.stdout, fine
    procs.web(url, name="web.9", WEB_WORKERS=1, FORMATION_ID="theirs")  # wrong on purpose
    wrong = subprocess.run(ps, env=process_env(), capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2, wrong
    [line] = wrong.stderr.splitlines()
    assert "web.9" in line and "theirs" in line and "ours" in line, line


# -- the Formation page and Locust's UI --------------------------------------------------------

def ui(procs, tmp_path, name, host, redis_url):
    port = free_port()
    procs.spawn([*LOCUST, "--web-host", "127.0.0.1", "--web-port", str(port), "--host", host,
                 "--redis-url", redis_url, "--report-dir", str(tmp_path / name)], process_env(), tmp_path / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(url + "/", timeout=2).ok, timeout=60, what=f"Locust's web UI {name}")
    return url


def test_the_page_shows_the_formation_before_any_run_and_refuses_another_formations_redis(procs, tmp_path):
    ours, our_client, _ = backing(procs, tmp_path / "ours")
    theirs, their_client, _ = backing(procs, tmp_path / "theirs")
    ours_id, theirs_id = our_client.get(FORMATION_KEY), their_client.get(FORMATION_KEY)
    for name in ("web.1", "web.2", "web.3"):
        procs.web(ours, name=name, WEB_WORKERS=1)
    proxy = procs.proxy(ours)

    right = ui(procs, tmp_path, "right", proxy.url, ours)
    state = requests.get(right + "/factor6/state", timeout=10).json()
    formation = state["formation"]
    assert not state["running"] and state["run"] is None and "no test has run yet" in state["note"]
    assert sorted(card["name"] for card in formation["instances"]) == ["web.1", "web.2", "web.3"]
    assert all(card["state"] == "serving" and card["workers"] for card in formation["instances"]), formation
    assert formation["proxy"]["state"] == "up" and formation["backing"]["state"] == "up"
    assert formation["desired"] is None and formation["identity"] is None
    assert 'id="scale-count" type="number" min="1" max="64">' in requests.get(right + "/factor6", timeout=5).text

    wrong = ui(procs, tmp_path, "wrong", proxy.url, theirs)  # wrong on purpose
    state = requests.get(wrong + "/factor6/state", timeout=10).json()
    assert state["formation"]["instances"] == [], "their Redis lists none of ours"
    assert ours_id in state["note"] and theirs_id in state["note"] and "wrong Redis" in state["note"], state["note"]
    started = requests.post(wrong + "/swarm", data={"user_count": 2, "spawn_rate": 2, "host": proxy.url},
                            timeout=60).json()
    assert started["success"] is False and ours_id in started["message"] and theirs_id in started["message"], started


def test_a_taken_ui_port_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*LOCUST, "--web-host", "127.0.0.1", "--web-port", str(port),
                                 "--host", "http://127.0.0.1:9"], env=process_env(), cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and "AttributeError" not in result.stderr, result.stderr[-3000:]
    [line] = [line for line in result.stderr.splitlines() if line.startswith("factor6:")]
    assert f"127.0.0.1:{port}: taken" in line and "--web-port" in line, line


def test_ps_watch_at_80_columns_keeps_every_pid_and_the_backing_line(procs, tmp_path):
    import rich  # noqa: PLC0415 - the console scripts/ps --watch draws on, made 80 columns wide here

    from scaler.formation import watch  # noqa: PLC0415

    url, client, supervisor = backing(procs, tmp_path / "redis")
    web = procs.web(url, name="web.1", WEB_WORKERS=3)
    rich.reconfigure(width=80, record=True, force_terminal=False)
    try:
        watch(client, url, every=0, frames=0)
        shown = rich.get_console().export_text()
    finally:
        rich.reconfigure()
    assert max(map(len, shown.splitlines())) <= 80, shown
    assert shown.startswith("backing: ") and f"supervisor pid {supervisor.pid}" in " ".join(shown.split()), shown
    cells = shown.split()
    assert str(web.popen.pid) in cells and all(str(w.pid) in cells for w in web.workers), shown
