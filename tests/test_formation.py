"""scripts/ps's view of a live formation: registry entries joined with real processes."""
import os
import pty
import select
import signal
import subprocess
import time

import requests

from tests.procs import ROOT, free_port, process_env, wait_until
from scaler.formation import live_instances


def test_live_instances_list_masters_workers_and_hits_served(procs, redis_url, redis_client):
    first = procs.web(redis_url, name="web.1", WEB_WORKERS=2)
    procs.web(redis_url, name="web.2", WEB_WORKERS=1)
    for _ in range(3):
        requests.post(first.url + "/hits")
    instances = {i.name: i for i in live_instances(redis_client)}
    assert set(instances) == {"web.1", "web.2"}
    assert instances["web.1"].master == first.popen.pid
    assert sorted(w.pid for w in instances["web.1"].workers) == sorted(w.pid for w in first.workers)
    assert len(instances["web.2"].workers) == 1
    assert (instances["web.1"].served, instances["web.2"].served) == (3, 0)


def test_scripts_ps_prints_one_row_per_instance(procs, redis_url):
    web = procs.web(redis_url, name="web.7")
    out = subprocess.run([str(ROOT / "scripts/ps"), "--redis-url", redis_url], env=process_env(),
                         capture_output=True, text=True, check=True).stdout
    backing, header, *rows = out.strip().splitlines()
    assert backing.startswith("backing: ") and "server pid" in backing
    assert header.split()[:3] == ["INSTANCE", "ADDRESS", "MASTER"]
    assert len(rows) == 1 and rows[0].split()[:3] == ["web.7", web.address, str(web.popen.pid)]


def test_honcho_start_takes_its_ports_from_the_shell_and_stays_quiet(procs, tmp_path):
    """.env sets nothing, so the shell's PROXY_PORT and PORT_REDIS win; no access log, no start/stop alarms."""
    proxy_port, redis_port, log = free_port(), free_port(), tmp_path / "honcho.log"
    honcho = procs.honcho("web=1", {"PROXY_PORT": proxy_port, "PORT_REDIS": redis_port,
                                    "REDIS_DATA": tmp_path / "redis"}, log, processes=("redis", "web", "proxy"))
    url = f"http://127.0.0.1:{proxy_port}"
    wait_until(lambda: honcho.poll() is not None or any(b["state"] == "up" for b in
               requests.get(url + "/_proxy/metrics", timeout=2).json()["backends"]), timeout=60,
               what=f"the proxy on the shell's PROXY_PORT {proxy_port}")
    assert honcho.poll() is None, log.read_text()
    assert all(requests.post(url + "/hits", timeout=10).ok for _ in range(20))
    honcho.send_signal(signal.SIGTERM)
    honcho.wait(timeout=60)
    lines = log.read_text().splitlines()
    assert not [line for line in lines if "/hits" in line], "the proxy's access log is off by default"
    ours = [line for line in lines if " web.1 " in line or " proxy.1 " in line]  # redis warns about the host
    assert not [line for line in ours if "WARNING" in line or "heartbeat failed" in line], ours
    assert any("[web.1:" in line and "Booting worker" in line for line in lines), "gunicorn names its instance"


def test_scripts_ps_watch_redraws_the_table_in_place_until_ctrl_c(procs, redis_url, tmp_path):
    web = procs.web(redis_url, name="web.8")
    primary, secondary = pty.openpty()  # a real terminal, as people run it
    watch = subprocess.Popen([str(ROOT / "scripts/ps"), "--redis-url", redis_url, "--watch"], stdin=secondary,
                             stdout=secondary, stderr=secondary, env=process_env(COLUMNS=150, LINES=40, TERM="xterm"),
                             start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(secondary)  # (a test run in the background ignores SIGINT, and its children would inherit that)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while seen.count(b"web.8") < 3 and time.monotonic() < deadline:
            if select.select([primary], [], [], 1)[0]:
                seen += os.read(primary, 65536)
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=30) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
        os.close(primary)
    assert seen.count(b"web.8") >= 3, seen[-500:]
    assert str(web.popen.pid).encode() in seen
    assert b"\x1b[" in seen, "redrawn in place with the terminal's cursor controls"
