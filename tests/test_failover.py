"""The replicated backing service on real processes: Sentinel failover, a forced loss the checker names, bad input.

Web follows the primary through a failover (a 503 at most, never a crash); primary-freeze
fails over and the zombie is demoted when it wakes. The proxy's registry reader follows it
too: an instance that registers on the new primary gets traffic, while a proxy given only
the old primary's URL (the negative control) never sees it; and after a graceful failover
it reads the new primary, while that proxy reads the demoted one.

One primary, two replicas and three Sentinels, each a ``python -m backing`` supervisor
(REDIS_ROLE), on free ports, shared by the tests of this module and always cleaned up.

The negative control: replication is held back (both replicas SIGSTOPped and their
links cut on the primary), hits are acknowledged by the primary alone, the primary is
SIGKILLed and the Sentinels promote a replica that never got them. The checker must
name exactly those hits as lost, the numbers the new primary hands out again as
duplicated, and the per-failover breakdown must put them on that failover.
"""
import json
import signal
import time
import uuid
from types import SimpleNamespace

import psutil
import pytest
import redis
import requests

from bench.chaos.engine import ChaosMonkey
from bench.harness.report import render_html
from bench.load.conclude import PATIENCE_S, redis_prospect
from bench.runfolder import CHAOS, VERDICT_JSON, write_jsonl
from bench.verdict.checker import check
from bench.verdict.failover import breakdown
from bench.verdict.record import start_run
from bench.verdict.sources import Source, patiently, read_redis
from proxy.discovery import UNREADABLE
from tests.procs import ROOT, Processes, free_port, process_env, wait_until
from web import create_app
from common.settings import sentinels
from web.config import Config
from web.hits import AtomicCounter
from common.redis_client import check_sentinels, connect, primary_address

MASTER = "factor6"
GENEROUS = 60  # seconds: failovers take seconds, and the machine is shared


class Formation:
    def __init__(self, procs, folder):
        self.primary, self.replicas = free_port(), [free_port(), free_port()]
        self.sentinels = [free_port() for _ in range(3)]
        self.env = {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinels),
                    "REDIS_MASTER_NAME": MASTER, "REDIS_PRIMARY": f"127.0.0.1:{self.primary}"}
        self.settings = sentinels(self.env)
        self.data = {}  # port: the data folder of its supervisor
        for role, port in [("primary", self.primary), *(("replica", p) for p in self.replicas),
                           *(("sentinel", p) for p in self.sentinels)]:
            self.data[port] = folder / f"{role}-{port}"
            procs.spawn([str(ROOT / ".venv/bin/python"), "-m", "backing"],
                        process_env(REDIS_ROLE=role, PORT_REDIS=port, REDIS_DATA=self.data[port], **self.env),
                        folder / f"{role}-{port}.log")

    def server(self, port):
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)

    def pid(self, port):
        return int(self.server(port).info("server")["process_id"])

    def ready(self):
        """Settled: the Sentinels agree, see 2 replicas in sync, and the server they name is a primary that has
        them (right after a failover the one named may still be a replica whose link is down)."""
        up = [r for r in self.server(self.sentinels[0]).sentinel_slaves(MASTER)
              if r.get("master-link-status") == "ok" and not r.get("is_disconnected")]
        if len(up) != 2 or check_sentinels(self.settings) is not None:
            return False
        role = self.server(primary_address(self.settings)[1]).execute_command("ROLE")
        return role[0] == "master" and len(role[2]) == 2


@pytest.fixture(scope="module")
def formation(tmp_path_factory):
    with Processes() as procs:
        form = Formation(procs, tmp_path_factory.mktemp("replicated"))
        wait_until(form.ready, timeout=GENEROUS, interval=0.5, what="2 replicas in sync, 3 Sentinels with a quorum")
        yield form


def test_web_follows_the_primary_through_a_failover_and_answers_503_not_a_crash_on_the_way(formation, monkeypatch):
    for name, value in formation.env.items():
        monkeypatch.setenv(name, value)
    app = create_app(Config.from_env({**formation.env, "HONCHO_PROCESS_NAME": "web.t"})).test_client()
    first = app.post("/hits")
    assert first.status_code == 200
    old = primary_address(formation.settings)
    formation.server(formation.sentinels[0]).execute_command("SENTINEL", "FAILOVER", MASTER)  # old one demoted, alive
    new = wait_until(lambda: (named := primary_address(formation.settings)) != old and named, timeout=GENEROUS,
                     interval=0.1, what="a failover")
    statuses = []
    for _ in range(20):  # a connection still open to the demoted primary gets READONLY: a 503, then it reconnects
        response = app.post("/hits")
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
        assert response.status_code == 503 and response.headers["Retry-After"] == "1", response.get_json()
        time.sleep(0.2)
    assert statuses[-1] == 200 and response.get_json()["hits"] > first.get_json()["hits"]
    assert formation.server(new[1]).execute_command("ROLE")[0] == "master"
    wait_until(formation.ready, timeout=GENEROUS, interval=0.5, what="both replicas in sync again")


def test_wait_durability_never_acknowledges_a_hit_the_replicas_did_not_confirm(formation, monkeypatch):
    env = {**formation.env, "REDIS_DURABILITY": "wait", "REDIS_WAIT_REPLICAS": "2", "REDIS_WAIT_TIMEOUT_MS": "300"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app(Config.from_env({**env, "HONCHO_PROCESS_NAME": "web.t"})).test_client()
    assert app.post("/hits", headers={"Idempotency-Key": "w:c:1"}).status_code == 200
    primary = primary_address(formation.settings)
    replica = psutil.Process(formation.pid(next(p for p in (formation.primary, *formation.replicas) if p != primary[1])))
    replica.send_signal(signal.SIGSTOP)
    try:
        unconfirmed = app.post("/hits", headers={"Idempotency-Key": "w:c:2"})
    finally:
        replica.send_signal(signal.SIGCONT)
    assert unconfirmed.status_code == 503 and unconfirmed.get_json()["outcome"] == "unknown"
    retried = wait_until(lambda: (r := app.post("/hits", headers={"Idempotency-Key": "w:c:2"})).status_code == 200 and r,
                         timeout=GENEROUS, interval=0.2, what="the retry to be confirmed")
    assert retried.get_json()["replayed"] is True  # applied once, acknowledged only once both replicas had it


def test_primary_freeze_fails_over_and_the_zombie_rejoins_as_a_replica(formation, monkeypatch, tmp_path):
    for name, value in formation.env.items():
        monkeypatch.setenv(name, value)
    old = primary_address(formation.settings)
    # Frozen 8 s, well past down-after (1 s) and a failover's few seconds: with the default 3 s, Sentinels slowed
    # by a loaded machine had not chosen a new primary before the old one thawed, and rightly made no failover.
    monkey = ChaosMonkey(connect(f"redis://127.0.0.1:{old[1]}/0", env=formation.env), seed=1, freeze_s=8.0,
                         log_path=tmp_path / "chaos.jsonl")
    event = monkey.act("primary-freeze")
    assert event["outcome"] == "ok" and event["duration_s"] > 1 and event["target"] == f"redis@127.0.0.1:{old[1]}"
    failover = wait_until(lambda: next((e for e in monkey.events if e["action"] == "failover"), None),
                          timeout=GENEROUS, interval=0.2, what="the failover event")
    monkey.stop()
    assert failover["outcome"] == "ok" and failover["after"] == "primary-freeze" and failover["failover_s"] > 0
    assert any(e["action"] == "primary-thaw" and e["frozen_s"] >= event["duration_s"] for e in monkey.events)
    wait_until(lambda: formation.server(old[1]).execute_command("ROLE")[0] == "slave", timeout=GENEROUS,
               interval=0.2, what="the zombie primary to be demoted")
    wait_until(formation.ready, timeout=GENEROUS, interval=0.5, what="both replicas in sync again")


def test_the_end_of_a_run_waits_out_a_primary_kill_while_the_sentinels_answer(formation, monkeypatch, tmp_path):
    """The conclusion's patient read (bench/load/conclude.py) waits for the new primary because the Sentinels
    answer: with no grace at all, it would give up at the first refusal otherwise."""
    for name, value in formation.env.items():
        monkeypatch.setenv(name, value)
    client = connect(f"redis://127.0.0.1:{formation.primary}/0", timeout=1, env=formation.env)
    old = primary_address(formation.settings)
    prospects = []

    def prospect():
        prospects.append(redis_prospect(SimpleNamespace(report_dir=tmp_path)))
        return prospects[-1]

    primary = psutil.Process(formation.pid(old[1]))
    primary.kill()  # its supervisor restarts it only once the Sentinels elected another
    primary.wait(GENEROUS)
    assert patiently(lambda: client.set("conclude:after-failover", 1), PATIENCE_S, 0.2, prospect, grace_s=0) is True
    assert prospects and all(hopeful and "Sentinel" in why for hopeful, why in prospects), prospects
    assert primary_address(formation.settings) != old
    wait_until(formation.ready, timeout=GENEROUS, interval=0.5, what="the old primary back as a replica, in sync")


def test_a_failover_to_a_replica_that_never_got_the_hits_loses_them_and_the_checker_names_them(formation, tmp_path):
    run = f"t{uuid.uuid4().hex[:8]}"
    client = connect(f"redis://127.0.0.1:{formation.primary}/0", timeout=2, env=formation.env)
    counter = AtomicCounter(client, "test", 3600)
    start_run(client, run, 3600)
    journal, seq = [], iter(range(1, 10**6))

    def hit():
        key = f"{run}:c1:{next(seq)}"
        journal.append({"type": "invoke", "key": key, "time": time.time()})
        number = wait_until(lambda: counter.hit(key).number, timeout=GENEROUS, interval=0.2, what=f"hit {key}")
        journal.append({"type": "ok", "key": key, "time": time.time(), "number": number})
        return key

    wait_until(formation.ready, timeout=GENEROUS, interval=0.5, what="a settled primary with both replicas")
    before = [hit() for _ in range(5)]
    old = primary_address(formation.settings)
    primary = formation.server(old[1])
    assert primary.execute_command("WAIT", 2, 5000) == 2  # the first hits are on both replicas
    replicas = [psutil.Process(formation.pid(port)) for port in (formation.primary, *formation.replicas)
                if port != old[1]]
    for process in replicas:
        process.send_signal(signal.SIGSTOP)
    try:
        primary.client_kill_filter(_type="replica")  # what was sent is in their sockets; what follows is not
        held = [hit() for _ in range(5)]  # acknowledged by the primary alone
        began = time.time()
        psutil.Process(formation.pid(old[1])).send_signal(signal.SIGKILL)
    finally:
        for process in replicas:
            process.send_signal(signal.SIGCONT)
    new = wait_until(lambda: (named := primary_address(formation.settings)) and named != old and named,
                     timeout=GENEROUS, interval=0.1, what="a failover")
    elected = time.time()
    after = [hit() for _ in range(5)]  # the new primary hands the held-back numbers out again
    # The killed primary comes back as a replica of the new one, never as a second primary.
    wait_until(lambda: formation.server(old[1]).execute_command("ROLE")[0] == "slave", timeout=GENEROUS,
               interval=0.2, what="the old primary to rejoin as a replica")
    assert primary_address(formation.settings) == new

    source = Source(run=run)
    ledger, start, end = read_redis(source, client)
    verdict = check(journal, list(ledger), start, end)
    assert verdict.status == "invalid"
    assert sorted(item["key"] for item in verdict.lost if "key" in item) == sorted(held)
    twice = {item["number"] for item in verdict.duplicated if "acknowledged to" in item["reason"]}
    held_numbers = {e["number"] for e in journal if e["type"] == "ok" and e["key"] in held}
    assert twice == held_numbers
    assert not {item.get("key") for item in verdict.lost} & set(before + after)

    failover = {"time": elected, "action": "failover", "after": "primary-kill", "target": f"redis@127.0.0.1:{old[1]}",
                "began": began, "elected": elected, "failover_s": round(elected - began, 3),
                "from": f"127.0.0.1:{old[1]}", "to": f"127.0.0.1:{new[1]}"}
    [row] = breakdown(journal, [failover], verdict)
    assert sorted(row["lost"]) == sorted(held) and set(row["duplicated"]) == held_numbers

    write_jsonl(tmp_path / CHAOS, [failover])  # report.html's Failovers table, from these real rows
    (tmp_path / VERDICT_JSON).write_text(json.dumps({**verdict.to_dict(), "failovers": [row]}))
    page = render_html(tmp_path)
    assert f"<td>primary-kill</td><td>127.0.0.1:{old[1]}</td><td>127.0.0.1:{new[1]}</td>" in page
    assert f"<td>{len(held)} (" in page.split("<h2>Failovers</h2>")[1].split("</table>")[0]


def proxy_metrics(proxy):
    return requests.get(proxy.url + "/_proxy/metrics", timeout=5).json()


def test_the_proxy_routes_to_an_instance_registered_on_the_new_primary_and_a_plain_url_never_sees_it(formation,
                                                                                                      procs):
    old = primary_address(formation.settings)
    old_url = f"redis://127.0.0.1:{old[1]}/0"
    first = procs.web(old_url, name="web.1", WEB_WORKERS=1, **formation.env)
    following = procs.proxy(old_url, name="proxy-sentinel", **formation.env)
    plain = procs.proxy(old_url, name="proxy-plain")  # the negative control: the old primary's URL alone
    for proxy in (following, plain):
        wait_until(lambda: proxy_metrics(proxy)["backend_set"] == [first.address], timeout=GENEROUS,
                   what="web.1 in the proxy's rotation")
    hold = formation.data[old[1]] / "hold"
    hold.write_text(str(time.time() + 10 * GENEROUS))  # the supervisor does not restart it: the old primary stays dead
    try:
        psutil.Process(formation.pid(old[1])).send_signal(signal.SIGKILL)
        wait_until(lambda: (named := primary_address(formation.settings)) and named != old, timeout=GENEROUS,
                   interval=0.2, what="a failover")
        second = procs.web(old_url, name="web.2", WEB_WORKERS=1, **formation.env)  # registers on the new primary
        wait_until(lambda: second.address in proxy_metrics(following)["backend_set"], timeout=GENEROUS,
                   what="web.2, registered on the new primary, in the following proxy's rotation")
        wait_until(lambda: requests.get(following.url + "/healthz", timeout=10).headers["X-Backend"] == second.address,
                   timeout=GENEROUS, interval=0.1, what="a request through the following proxy served by web.2")
        seen = proxy_metrics(plain)
        assert seen["discovery"] == UNREADABLE and second.address not in seen["backend_set"]
        assert seen["backend_set"] == [first.address]  # the last known set, kept: it never learns of web.2
    finally:
        hold.unlink()
    wait_until(lambda: formation.server(old[1]).execute_command("ROLE")[0] == "slave", timeout=GENEROUS,
               interval=0.2, what="the old primary to rejoin as a replica")
    wait_until(formation.ready, timeout=GENEROUS, interval=0.5, what="both replicas in sync again")


def servers_read_by(formation, proxy):
    """The ports of the data servers the proxy holds a connection to now (its registry reader's), by CLIENT LIST."""
    own = {f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.Process(proxy.popen.pid).net_connections("tcp") if c.raddr}
    return {port for port in (formation.primary, *formation.replicas)
            if any(client["addr"] in own for client in formation.server(port).client_list())}


def test_the_proxy_leaves_a_demoted_primary_for_the_new_one_and_a_plain_url_stays_on_it(formation, procs):
    old = primary_address(formation.settings)
    old_url = f"redis://127.0.0.1:{old[1]}/0"
    following = procs.proxy(old_url, name="proxy-sentinel", **formation.env)
    plain = procs.proxy(old_url, name="proxy-plain")
    for proxy in (following, plain):
        wait_until(lambda: servers_read_by(formation, proxy) == {old[1]}, timeout=GENEROUS, what="reads on the primary")
    formation.server(formation.sentinels[0]).execute_command("SENTINEL", "FAILOVER", MASTER)  # old one demoted, alive
    new = wait_until(lambda: (named := primary_address(formation.settings)) != old and named, timeout=GENEROUS,
                     interval=0.1, what="a failover")
    wait_until(lambda: formation.server(old[1]).execute_command("ROLE")[0] == "slave", timeout=GENEROUS,
               interval=0.2, what="the old primary to be demoted")
    # Sentinel closes the clients of the server it demotes: the following proxy reconnects by asking it.
    wait_until(lambda: servers_read_by(formation, following) == {new[1]}, timeout=GENEROUS, interval=0.2,
               what="the following proxy's reads on the new primary")
    wait_until(lambda: servers_read_by(formation, plain) == {old[1]}, timeout=GENEROUS, interval=0.2,
               what="the plain proxy's reads back on the demoted primary, now a replica")
    wait_until(formation.ready, timeout=GENEROUS, interval=0.5, what="both replicas in sync again")


def test_bad_sentinel_settings_are_one_line_each_and_do_not_hang(formation):
    nothing = sentinels({"REDIS_SENTINELS": f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"})
    wrong_name = sentinels({**formation.env, "REDIS_MASTER_NAME": "no-such-master"})
    started = time.monotonic()
    assert check_sentinels(nothing).startswith("none of the Sentinels at")
    assert "know no master named 'no-such-master'" in check_sentinels(wrong_name)
    assert primary_address(nothing) is None and primary_address(wrong_name) is None
    stopped = [psutil.Process(formation.pid(port)) for port in formation.sentinels[1:]]
    try:
        for process in stopped:
            process.send_signal(signal.SIGSTOP)
        # The remaining Sentinel sees the other two down after down-after, and says it cannot fail over.
        problem = wait_until(lambda: check_sentinels(formation.settings), timeout=GENEROUS, interval=0.5,
                             what="the lone Sentinel to see no quorum")
        assert "cannot fail" in problem and "\n" not in problem
    finally:
        for process in stopped:
            process.send_signal(signal.SIGCONT)
    assert time.monotonic() - started < GENEROUS
    # Last in this module: Sentinels resumed from SIGSTOP enter TILT mode (30 s without acting).
