"""Network faults under scripts/check --hosts, for real: nft tables, netem, ss -K on namespace hosts.

Each check is a real formation on real namespaces; the assertions read what it
wrote. The keyless run under the same fault as a keyed one is the negative
control: were the checker blind to double counting, it would pass too.
"""
import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from bench.chaos import ChaosMonkey
from bench.chaos.network import NetworkFaults
from bench.harness.hosts import WEB_PORT
from bench.harness.netns import Network, namespaces, remove_leftovers
from bench.runfolder import CHAOS, HOSTS_JSON, JOURNAL, VERDICT_JSON, read_json, read_jsonl
from bench.benchmarks.stats import hit_latencies, percentile
from tests.procs import ROOT, process_env
from tests.support import NAMESPACES_REFUSED, links, needs_namespaces, tool, without_engine

# Run on the load host: the status and seconds of /readyz, then /healthz, straight from one web instance.
PROBE_WEB = """
import json, sys, time, urllib.error, urllib.request
answers = {}
for path in ("/readyz", "/healthz"):
    started = time.monotonic()
    try:
        status = urllib.request.urlopen(f"http://{sys.argv[1]}{path}", timeout=30).status
    except urllib.error.HTTPError as error:
        status = error.code
    answers[path] = (status, round(time.monotonic() - started, 3))
print(json.dumps(answers))
"""


def netem_refusal():
    """Why latency cannot be made here (this kernel may lack sch_netem), or None."""
    if NAMESPACES_REFUSED:
        return NAMESPACES_REFUSED
    network = Network(["probe"])
    try:
        network.create()
        return NetworkFaults({"switch": network.switch, "hosts": {}}, seed=1).refusal({"latency": 1.0})
    finally:
        network.remove()


def check(tmp_path, name, *args, **env):
    out = tmp_path / name
    done = subprocess.run([str(ROOT / "scripts/check"), "--require-hosts", "--report-dir", str(out), *args],
                          env=process_env(**env), capture_output=True, text=True, timeout=300)
    return done, read_json(out / VERDICT_JSON, {}), out


def faults_of(out, action):
    """The ok events of action, and of the heals after it."""
    events = read_jsonl(out / CHAOS)
    return ([e for e in events if e["action"] == action and e["outcome"] == "ok"],
            [e for e in events if e["action"] == "heal" and e.get("after") == action and e["outcome"] == "ok"])


@pytest.fixture
def nft():
    """nftables' nft, installed when missing (partition, oneway and loss are nft tables); else the test skips."""
    return tool("nft", "nftables")


def nft_tables(netns, nft):
    done = subprocess.run(["ip", "netns", "exec", netns, nft, "list", "tables"], capture_output=True, text=True)
    return done.stdout.split()


def machine_state(nft):
    """What a run must leave as it found it in the machine's own namespace."""
    def out(*argv):
        return without_engine(subprocess.run(argv, capture_output=True, text=True).stdout)
    return {"links": links(), "qdiscs": out(tool("tc", "iproute2"), "qdisc", "show"),
            "routes": out("ip", "route", "show", "table", "all"), "rules": out("ip", "rule", "show"),
            "nft": out(nft, "list", "ruleset")}


def test_network_actions_are_refused_without_hosts(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.harness", "--chaos-mix", "kill,partition,loss",
                           "--report-dir", str(tmp_path)], cwd=ROOT, env=process_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "chaos actions partition, loss act on the network between hosts: they need --hosts" in \
        done.stderr.strip().splitlines()[-1]
    with pytest.raises(ValueError, match="needs --hosts"):
        ChaosMonkey(None, mix="latency")


@pytest.mark.fast
def test_the_choice_of_hosts_is_seeded_and_the_commands_undo_themselves():
    layout = {"switch": "f6-1-switch",
              "hosts": {name: {"namespace": f"f6-1-{name}"} for name in ("redis", "web1", "web2", "web3", "proxy")}}

    def plans(seed):
        faults = NetworkFaults(layout, seed, partitions="web-redis,web-proxy")
        return [faults.plan(action) for action in ("partition", "oneway", "latency", "loss", "reset") * 4]

    first, again, other = plans(7), plans(7), plans(8)
    assert [f.target for f in first] == [f.target for f in again] != [f.target for f in other]
    for fault in first:
        if fault.action in ("partition", "oneway", "loss"):  # one nft table each, removed whole
            table = fault.commands[0].split()[-1]
            assert fault.undo == [f"ip netns exec f6-1-switch nft delete table bridge {table}"]
    partition = first[0]
    a, b = partition.hosts
    assert f"iifname {a} oifname {b} drop" in partition.commands[-2] and f"iifname {b} oifname {a} drop" in partition.commands[-1]
    assert sum("drop" in line for line in first[1].commands) == 1, "oneway cuts one direction only"


@needs_namespaces
def test_a_web_host_cut_off_from_redis_answers_503_and_the_run_stays_valid(tmp_path, nft):
    before = machine_state(nft)
    out = tmp_path / "partition"
    run = subprocess.Popen([str(ROOT / "scripts/check"), "--require-hosts", "--report-dir", str(out), "--web", "2",
                            "--duration", "15", "--chaos-rate", "0.15", "--chaos-mix", "partition",
                            "--partitions", "web-redis", "--fault-s", "6"], env=process_env(), stdout=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 120
        while not faults_of(out, "partition")[0] and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        cut = faults_of(out, "partition")[0][0]
        layout = read_json(out / HOSTS_JSON)
        web = layout["hosts"][cut["hosts"][0]]["address"]
        # From the load host, straight to the cut instance: it must answer, not hang.
        answers = json.loads(subprocess.run(
            ["ip", "netns", "exec", layout["hosts"]["load"]["namespace"], sys.executable, "-c", PROBE_WEB, f"{web}:{WEB_PORT}"],
            capture_output=True, text=True, timeout=60, check=True).stdout)
        printed, _ = run.communicate(timeout=240)
    finally:
        run.kill()
        run.wait()
    assert answers["/readyz"][0] == 503, answers
    assert answers["/healthz"][0] == 200, f"its workers are not hung: {answers}"
    assert run.returncode == 0, printed[-3000:]
    verdict = read_json(out / VERDICT_JSON)
    assert verdict["status"] == "valid" and verdict["ok"] > 500, verdict["counts"]
    cuts, heals = faults_of(out, "partition")
    assert cut["hosts"][0].startswith("web") and cut["hosts"][1] == "redis"
    assert cuts and len(heals) == len(cuts), "every partition applied was healed"
    layout = read_json(out / HOSTS_JSON)
    assert [e["commands"] for e in layout["faults"]] == [e["commands"] for e in read_jsonl(out / CHAOS)]
    assert machine_state(nft) == before
    assert not {host["namespace"] for host in layout["hosts"].values()} & set(namespaces())


@needs_namespaces
def test_keyed_retries_ride_through_lost_replies_and_keyless_ones_count_twice(tmp_path, nft):
    """A web host's replies to the proxy are dropped: every hit it got was applied, and timed out at the proxy."""
    # Short cuts with gaps: each catches the hits then in flight to the host, which the proxy then leaves out
    # until the heal, so more cuts make more keyless duplicates than the stop leaves of unknown outcome.
    fault = ["--web", "2", "--duration", "18", "--chaos-rate", "0.25", "--chaos-mix", "oneway",
             "--partitions", "web-proxy", "--fault-s", "3"]
    # Round robin: the cut host keeps getting hits for the whole fault, not only those in flight when it began,
    # so the duplicates of keyless retries outnumber whatever the stop leaves unknown.
    done, keyed, out = check(tmp_path, "keyed", *fault, PROXY_BALANCE="round-robin")
    assert done.returncode == 0 and keyed["status"] == "valid", done.stdout[-3000:]
    assert faults_of(out, "oneway")[0], "the fault was applied"
    done, keyless, out = check(tmp_path, "keyless", *fault, "--hits", "keyless-retried", PROXY_BALANCE="round-robin")
    assert faults_of(out, "oneway")[0], "the fault was applied"
    assert done.returncode == 1 and keyless["status"] == "invalid", done.stdout[-3000:]
    counter = keyless["duplicated"][0]
    assert counter["delta"] > counter["applications"] + keyless["stats"]["outcomes"].get("pending", 0), counter
    assert keyless["gaps"]


@needs_namespaces
@pytest.mark.skipif(netem_refusal() is not None, reason=f"no latency here: {netem_refusal()}")
def test_latency_on_the_only_web_host_shows_in_p50(tmp_path):
    done, verdict, out = check(tmp_path, "latency", "--web", "1", "--duration", "8", "--chaos-rate", "1",
                               "--chaos-mix", "latency", "--fault-s", "30")
    assert done.returncode == 0 and verdict["status"] == "valid", done.stdout[-3000:]
    delayed_since = faults_of(out, "latency")[0][0]["time"]
    later = {e["key"] for e in read_jsonl(out / JOURNAL) if e["type"] == "invoke" and e["time"] > delayed_since}
    p50 = percentile(hit_latencies([e for e in read_jsonl(out / JOURNAL) if e["key"] in later]), 0.5)
    assert p50 > 0.05, f"p50 {p50 * 1000:.1f} ms under 50 ± 20 ms of delay on every frame to the web host"


@needs_namespaces
def test_nothing_is_left_after_a_sigkilled_run(tmp_path, nft):
    """The check and its network agent are SIGKILLed mid-fault, so nothing heals: the sweep must remove it all."""
    before = machine_state(nft)
    out = tmp_path / "killed"
    check_run = subprocess.Popen([str(ROOT / "scripts/check"), "--require-hosts", "--web", "2", "--duration", "60",
                                  "--chaos-rate", "2", "--chaos-mix", "partition,loss", "--fault-s", "60",
                                  "--report-dir", str(out)], env=process_env(), stdout=subprocess.DEVNULL,
                                 start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (faults_of(out, "partition")[0] and faults_of(out, "loss")[0]) and time.monotonic() < deadline:
            time.sleep(0.5)
        layout = json.loads((out / HOSTS_JSON).read_text())
        assert len(nft_tables(layout["switch"], nft)) >= 4, "two faults live in the switch"  # "table bridge <name>" each
        check_process = psutil.Process(check_run.pid)
        killed = [check_process] + [p for p in check_process.children(recursive=True) if "bench.chaos" in " ".join(p.cmdline())]
        for process in killed:
            process.send_signal(signal.SIGKILL)
    finally:
        check_run.kill()
        check_run.wait()
    removed = remove_leftovers()
    assert layout["switch"] in removed
    assert not {host["namespace"] for host in layout["hosts"].values()} & set(namespaces())
    assert machine_state(nft) == before
