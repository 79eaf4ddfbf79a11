"""Helpers more than one test module uses: the backing service, the scaler, a run's verdict, namespaces, Debian tools.

    service = start_backing(procs, tmp_path)           # python -m backing on a free port, serving
    scaler = start_scaler(procs, service.url, tmp_path / "scaler.log")
    nft = tool("nft", "nftables")                      # its path, installed when missing; else the test skips

Test modules import from here (and tests/procs.py, tests/relay.py), never from one another.
"""
import re
import subprocess
import sys

import psutil
import pytest
import redis

from bench.harness.netns import unavailable
from bench.packages import Missing, installed
from bench.verdict import checker
from bench.verdict.sources import Source, read_redis
from common.schema import SCALER_KEY
from scaler.shared import read_status
from tests.procs import free_port, process_env, wait_until

# -- a tool from Debian ----------------------------------------------------------------------


def tool(name, package):
    """The path of a Debian program a test calls, installed by bench.packages when missing; else the test skips."""
    try:
        return installed(name, package)
    except Missing as exc:
        pytest.skip(str(exc))


# -- network namespaces ----------------------------------------------------------------------

NAMESPACES_REFUSED = unavailable()


def needs_namespaces(test):
    """Skips ``test`` where namespaces cannot be made; marks it ``namespaces``, which tests/conftest.py runs in one
    xdist group (each --hosts check sweeps away the namespaces of dead runs, which some of these make on purpose)."""
    skip = pytest.mark.skipif(NAMESPACES_REFUSED is not None, reason=f"no network namespaces here: {NAMESPACES_REFUSED}")
    return pytest.mark.namespaces(skip(test))


def links():
    """The network links in the machine's own namespace, by name (a Docker engine's veth left out: see below)."""
    return sorted(line.split(":")[1].strip() for line in subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.splitlines()
        if not ENGINE_LINK.search(line))


# A Docker engine of another test (bench/harness/engine.py) adds its veth (f6d<pid>), routes and qdiscs on it,
# and an nft table (factor6_docker_<pid>) to the machine while it runs: a snapshot of the machine's network
# taken by a --hosts or network-fault test leaves them out, as they come and go with that other test.
ENGINE_LINK = re.compile(r"\bf6d\d+\b")
ENGINE_TABLE = re.compile(r"^table \w+ factor6_docker_\d+ \{\n.*?^\}\n", re.M | re.S)


def without_engine(text):
    """``text`` (ip, tc or nft output) without the lines or nft tables of a running Docker engine."""
    text = ENGINE_TABLE.sub("", text)
    return "".join(line for line in text.splitlines(keepends=True) if not ENGINE_LINK.search(line))


# -- the backing service ---------------------------------------------------------------------


class Backing:
    def __init__(self, popen, port, log, data):
        self.popen, self.port, self.log, self.data = popen, port, log, data
        self.url = f"redis://127.0.0.1:{port}/0"

    def client(self, **options):
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2,
                                    **options)

    def server_pid(self):
        """The supervisor's one child, the server; None while there is none."""
        children = [c for c in psutil.Process(self.popen.pid).children() if running(c.pid)]
        assert len(children) <= 1, children
        return children[0].pid if children else None

    def serving_pid(self, other_than=None):
        """The server's pid once it answers PING (and is not ``other_than``)."""
        def serving():
            pid = self.server_pid()
            return pid if pid and pid != other_than and self.client().ping() else None
        return wait_until(serving, timeout=30, what=f"a server on {self.port}")

    def output(self):
        return self.log.read_text(errors="replace")


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_backing(procs, tmp_path, name="backing", port=None, data=None, wait=True, **env):
    port = port or free_port()
    data = data or tmp_path / f"{name}-data"
    log = tmp_path / f"{name}.log"
    popen = procs.spawn([sys.executable, "-m", "backing"], process_env(PORT_REDIS=port, REDIS_DATA=data, **env), log)
    service = Backing(popen, port, log, data)
    if wait:
        service.serving_pid()
    return service


# -- the scaler and the verdict --------------------------------------------------------------


def start_scaler(procs, redis_url, log_path, **env):
    popen = procs.spawn([sys.executable, "-m", "scaler"],
                        process_env(REDIS_URL=redis_url, SCALER_SETTLE="0.5", **env), log_path)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_until(lambda: popen.poll() is not None or read_status(client, SCALER_KEY), timeout=15,
               what="the scaler's lease")
    assert popen.poll() is None, log_path.read_text()
    return popen


def verdict_for(redis_client, run, journal):
    """The checker's verdict on ``journal`` against run ``run``'s ledger in Redis."""
    ledger, start, end = read_redis(Source(run=run), redis_client)
    return checker.check(journal, ledger, start, end)


def scaler_ticks(client, count):
    """Waits until the leading scaler, settled, has ticked ``count`` more times: a scaler about to act on what it
    sees has done so by then (each settled tick reconciles). The count, not a sleep, shows that the time passed."""
    def settled_ticks():
        status = read_status(client, SCALER_KEY)
        return status["ticks"] if status and status["settled"] else None
    first = wait_until(settled_ticks, timeout=60, what="the scaler settled")
    wait_until(lambda: (settled_ticks() or 0) >= first + count, timeout=60, what=f"{count} more scaler ticks")
