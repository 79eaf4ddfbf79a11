"""Live scaling on real processes: the scaler, scripts/scale and the autoscaler, under keyed load.

Every formation here is real: redis-server, gunicorn instances, the proxy, the
scaler (``python -m scaler``) and honcho; load is plain threads posting keyed
hits through the proxy, checked hit by hit by the same checker scripts/check uses.
"""
import json
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from bench.runfolder import VERDICT_JSON
from scaler.processes import is_alive, tree_of
from scaler.shared import Desired, Lease, read_status
from tests.procs import ROOT, process_env, wait_until
from tests.support import start_scaler, verdict_for
from common.registry import Registry
from common.schema import AUTOSCALE_KEY, SCALER_KEY, SERVED


class KeyedLoad:
    """Threads posting keyed hits through the proxy until stopped; a retry keeps its key, as Locust's users do."""

    def __init__(self, url, run, threads, tag=""):
        self.url, self.run, self.threads, self.tag = url, run, threads, tag
        self.stopping = threading.Event()
        self.journals = [[] for _ in range(threads)]
        self.workers = [threading.Thread(target=self.client, args=(c,), daemon=True) for c in range(threads)]

    def __enter__(self):
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for worker in self.workers:
            worker.join(30)

    @property
    def journal(self):
        return [event for journal in self.journals for event in journal]

    def client(self, c):
        journal, session = self.journals[c], requests.Session()
        seq = 0
        while not self.stopping.is_set():
            key, seq = f"{self.run}:{self.tag}c{c}:{seq}", seq + 1
            journal.append({"type": "invoke", "key": key, "time": time.time()})
            journal.append(self.hit(session, key))

    def hit(self, session, key):
        for _ in range(6):
            try:
                response = session.post(self.url + "/hits", headers={"Idempotency-Key": key}, timeout=15)
            except requests.RequestException:
                time.sleep(0.05)
                continue
            if response.ok:
                return {"type": "ok", "key": key, "time": time.time(), "number": response.json()["hits"]}
            time.sleep(0.05)
        return {"type": "info", "key": key, "time": time.time()}


def scale(redis_url, *args):
    return subprocess.run([str(ROOT / "scripts/scale"), *args, "--redis-url", redis_url], env=process_env(),
                          capture_output=True, text=True, timeout=120)


def names(client):
    return sorted(entry["name"] for entry in Registry(client).instances())


def gone(pids):
    """True when none of pids runs any more (a zombie nobody reaps counts as gone: it runs nothing)."""
    return not any(is_alive(pid) for pid in pids)


def owned_pids(client):
    """The masters and workers of the scaler's instances, from its status and the process table."""
    status = read_status(client, SCALER_KEY)
    return {proc.pid for i in status["instances"] if i["pid"] for proc in tree_of(i["pid"])}


def test_scale_up_and_down_under_keyed_load_loses_and_duplicates_nothing(procs, redis_url, redis_client, tmp_path):
    first = procs.web(redis_url, name="web.1", WORK_MS=10)
    proxy = procs.proxy(redis_url, PROXY_ACCESS_LOG=0)
    start_scaler(procs, redis_url, tmp_path / "scaler.log", WORK_MS=10)
    with KeyedLoad(proxy.url, "scale1", threads=6) as load:
        time.sleep(1)
        up = scale(redis_url, "web=3")
        assert up.returncode == 0, up.stdout + up.stderr
        assert names(redis_client) == ["web.1", "web.2", "web.3"]
        wait_until(lambda: all(int(redis_client.hget(SERVED, n) or 0) > 0 for n in ("web.2", "web.3")), timeout=15,
                   what="the new instances serving hits")
        down = scale(redis_url, "web=1")
        assert down.returncode == 0, down.stdout + down.stderr
        time.sleep(1)
    assert names(redis_client) == ["web.1"]
    assert Registry(redis_client).instances()[0]["pid"] == first.popen.pid, "the scaler touched an instance not its own"
    verdict = verdict_for(redis_client, "scale1", load.journal)
    assert verdict.valid and not verdict.errors, verdict.to_dict()
    assert verdict.ok > 100, verdict.counts
    print(up.stdout, down.stdout, verdict.counts, sep="\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_or_killed_scaler_leaves_no_instance_behind(procs, redis_url, redis_client, tmp_path, sig):
    scaler = start_scaler(procs, redis_url, tmp_path / "scaler.log")
    Desired(redis_client).set(2)
    wait_until(lambda: read_status(redis_client, SCALER_KEY)["steady"] and len(names(redis_client)) == 2,
               timeout=30, what="2 instances of the scaler")
    pids = wait_until(lambda: len(found := owned_pids(redis_client)) == 2 * 3 and found,
                      what="two masters with two workers each")
    scaler.send_signal(sig)
    # SIGTERM: the scaler drains them; SIGKILL: their parent-death signal, SIGTERM, makes them drain themselves.
    assert scaler.wait(timeout=15) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    wait_until(lambda: gone(pids), timeout=15, what="every instance process gone")
    assert names(redis_client) == [], "they deregistered on the way out"


def test_a_crashed_instance_is_relaunched_and_others_are_never_signalled(procs, redis_url, redis_client, tmp_path):
    foreign = procs.web(redis_url, name="web.1")
    foreign_tree = wait_until(lambda: len(tree := tree_of(foreign.popen.pid)) == 3 and
                              {proc.pid: proc.create_time() for proc in tree}, what="web.1's 2 workers booted")
    start_scaler(procs, redis_url, tmp_path / "scaler.log")
    Desired(redis_client).set(2)
    wait_until(lambda: read_status(redis_client, SCALER_KEY)["steady"], timeout=30, what="web.2 serving")
    [mine] = read_status(redis_client, SCALER_KEY)["instances"]
    assert mine["name"] == "web.2"
    psutil.Process(mine["pid"]).kill()
    wait_until(lambda: (status := read_status(redis_client, SCALER_KEY))["steady"]
               and status["instances"][0]["pid"] != mine["pid"], timeout=30, what="web.2 relaunched")
    [again] = read_status(redis_client, SCALER_KEY)["instances"]
    assert (again["name"], again["restarts"]) == ("web.2", 1)
    assert names(redis_client) == ["web.1", "web.2"]
    assert requests.get(f"http://{again['address']}/readyz", timeout=5).ok
    Desired(redis_client).set(1)
    wait_until(lambda: read_status(redis_client, SCALER_KEY)["steady"] and names(redis_client) == ["web.1"],
               timeout=30, what="web.2 drained")
    assert {proc.pid: proc.create_time() for proc in tree_of(foreign.popen.pid)} == foreign_tree


def test_scripts_scale_refuses_what_it_cannot_do_and_says_why(procs, redis_url, redis_client, tmp_path):
    result = scale(redis_url, "web=2")
    assert result.returncode == 2 and "no scaler is running" in result.stdout
    procs.web(redis_url, name="web.1")
    procs.web(redis_url, name="web.2")
    Desired(redis_client).set(3)  # left over from an earlier formation on this Redis
    start_scaler(procs, redis_url, tmp_path / "scaler.log", SCALER_MAX=3)
    wait_until(lambda: read_status(redis_client, SCALER_KEY)["foreign"] == 2, timeout=15, what="2 foreign seen")
    assert Desired(redis_client).get() is None, "a new scaler starts from the Procfile count"
    below = scale(redis_url, "web=1")
    assert below.returncode == 2 and "below the 2 instances the scaler did not start" in below.stdout
    above = scale(redis_url, "web=4")
    assert above.returncode == 2 and "SCALER_MAX=3" in above.stdout
    assert scale(redis_url, "db=3").returncode == 2
    autoscaler = Lease(redis_client, AUTOSCALE_KEY, ttl=30)
    autoscaler.hold({"pid": 1})
    busy = scale(redis_url, "web=3")
    assert busy.returncode == 2 and "autoscaler is running" in busy.stdout
    autoscaler.release()
    assert Desired(redis_client).get() is None, "nothing refused was written"
    shown = scale(redis_url)
    assert shown.returncode == 0 and "not the scaler's: 2" in shown.stdout


def test_a_second_scaler_stands_by_and_takes_over_when_the_first_dies(procs, redis_url, redis_client, tmp_path):
    first = start_scaler(procs, redis_url, tmp_path / "first.log")
    Desired(redis_client).set(1)
    wait_until(lambda: read_status(redis_client, SCALER_KEY)["steady"], timeout=30, what="the first scaler's web.1")
    second = procs.spawn([sys.executable, "-m", "scaler"], process_env(REDIS_URL=redis_url, SCALER_SETTLE="0.5"),
                         tmp_path / "second.log")
    wait_until(lambda: "standing by" in (tmp_path / "second.log").read_text(), timeout=15,
               what="the second one waiting")
    time.sleep(1)
    assert read_status(redis_client, SCALER_KEY)["pid"] == first.pid and names(redis_client) == ["web.1"]
    first.kill()
    wait_until(lambda: read_status(redis_client, SCALER_KEY)["pid"] == second.pid, timeout=15,
               what="the second scaler leading")
    Desired(redis_client).set(2)  # a new leader starts from the Procfile count: ask again
    wait_until(lambda: (status := read_status(redis_client, SCALER_KEY))["steady"] and status["target"] == 2
               and len(names(redis_client)) == 2, timeout=30, what="2 instances of the second scaler")


def test_scripts_scale_on_a_running_honcho_formation_and_nothing_left_after_it_stops(procs, redis_url, redis_client,
                                                                                    tmp_path):
    log = tmp_path / "honcho.log"
    honcho = procs.honcho("web=2,scaler=1", {"REDIS_URL": redis_url, "WEB_WORKERS": 1, "SCALER_SETTLE": 1}, log,
                          processes=["web", "scaler"])
    wait_until(lambda: names(redis_client) == ["web.1", "web.2"] and read_status(redis_client, SCALER_KEY),
               timeout=30, what="honcho's 2 instances and its scaler")
    up = scale(redis_url, "web=4")
    assert up.returncode == 0, up.stdout + log.read_text()[-3000:]
    assert names(redis_client) == ["web.1", "web.2", "web.3", "web.4"]
    pids = {proc.pid for proc in tree_of(honcho.pid)}
    down = scale(redis_url, "web=3")
    assert down.returncode == 0 and names(redis_client) == ["web.1", "web.2", "web.3"], down.stdout
    assert honcho.poll() is None, "honcho stopped the formation"
    honcho.send_signal(signal.SIGTERM)
    honcho.wait(timeout=20)
    wait_until(lambda: gone(pids), timeout=15, what="every process of the formation gone")
    print(up.stdout, down.stdout, sep="\n")


def test_the_autoscaler_reaches_max_under_load_returns_to_min_and_holds_a_steady_load(procs, redis_url,
                                                                                     redis_client, tmp_path):
    procs.web(redis_url, name="web.1", WORK_MS=100)
    proxy = procs.proxy(redis_url, PROXY_ACCESS_LOG=0)
    start_scaler(procs, redis_url, tmp_path / "scaler.log", WORK_MS=100)
    log = tmp_path / "autoscale.jsonl"
    procs.spawn([sys.executable, "-m", "scaler.autoscale"], process_env(
        REDIS_URL=redis_url, AUTOSCALE_METRICS_URL=proxy.url + "/_proxy/metrics", AUTOSCALE_LOG=log,
        AUTOSCALE_MIN=1, AUTOSCALE_MAX=3, AUTOSCALE_TARGET=2, AUTOSCALE_COOLDOWN=1, AUTOSCALE_DOWN_DELAY=3,
        AUTOSCALE_WINDOW=1, AUTOSCALE_INTERVAL=0.25), tmp_path / "autoscale.log")
    with KeyedLoad(proxy.url, "auto1", threads=12, tag="busy") as busy:  # 12 in flight, 100 ms each: 6 instances' worth
        wait_until(lambda: len(names(redis_client)) == 3, timeout=30, what="AUTOSCALE_MAX instances under load")
    wait_until(lambda: names(redis_client) == ["web.1"], timeout=30, what="back to AUTOSCALE_MIN when it stops")
    steady_from = time.time()
    with KeyedLoad(proxy.url, "auto1", threads=4, tag="steady") as steady:  # 2 instances' worth, inside the band
        time.sleep(12)
    decisions = [json.loads(line) for line in log.read_text().splitlines()]
    assert [d["action"] for d in decisions[:1]] == ["start"] and {"up", "down"} <= {d["action"] for d in decisions}
    assert all(d["reason"] and "in flight" in d["reason"] for d in decisions[1:])
    changes = [(d["action"], d["desired"]) for d in decisions if d["time"] >= steady_from and d["action"] != "hold"]
    assert len(changes) <= 2, changes
    assert len(names(redis_client)) == 2
    verdict = verdict_for(redis_client, "auto1", busy.journal + steady.journal)
    assert verdict.valid and not verdict.errors, verdict.to_dict()
    print(*(f"{d['action']} {d['previous']} -> {d['desired']}: {d['reason']}" for d in decisions
            if d["action"] in ("up", "down")), sep="\n")


def test_scripts_check_follows_the_spike_with_the_autoscaler_under_chaos_and_passes(tmp_path):
    out = tmp_path / "report"
    result = subprocess.run([str(ROOT / "scripts/check"), "--report-dir", str(out), "--shape", "spike", "--autoscale",
                             "4", "--web", "2", "--users", "4", "--duration", "24", "--chaos-rate", "1",
                             "--chaos-mix", "kill,term,reload"], env=process_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert json.loads((out / VERDICT_JSON).read_text())["status"] == "valid"
    users = {int(line.split(",")[1]) for line in (out / "locust_stats_history.csv").read_text().splitlines()[1:]}
    assert {4, 200} <= users, "the spike shape was followed"
    decisions = [json.loads(line) for line in (out / "autoscale.jsonl").read_text().splitlines()]
    assert any(d["action"] == "up" and d["desired"] == 4 for d in decisions), decisions[-3:]
    formation = [json.loads(line) for line in (out / "formation.jsonl").read_text().splitlines()]
    assert max(s["instances"] for s in formation) == 4
    assert "<h2>Autoscaling</h2>" in (out / "report.html").read_text()
