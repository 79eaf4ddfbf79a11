"""The backing service's faults: kill, restart, freeze or hold down the formation's Redis server.

    faults = BackingFaults(record, background, stopping, port=6379, proxy_url="http://127.0.0.1:8000")
    faults.act("redis-kill")    # its event; a background follow-up times the outage and the recovery

The engine (bench/chaos/engine.py) holds one and hands it the actions named in
``vocabulary.BACKING_ACTIONS``:

- ``redis-kill``: SIGKILL the server, a crash; its supervisor restarts it at once.
- ``redis-restart``: SIGTERM the server, a clean shutdown; restarted the same way.
- ``redis-freeze``: SIGSTOP it for ``freeze_s``, then SIGCONT (a ``thaw`` follow-up).
- ``redis-outage``: the server stopped for ``outage_s``: ``<data folder>/hold`` names the
  time until which the supervisor must not restart it (backing/supervisor.py), then
  SIGTERM; at the end the hold is lifted (a ``restore`` follow-up). A monkey that died
  mid-outage leaves a hold that lapses by itself.

What may be signalled: only the server listening on the formation's Redis port
with ``--port <port>`` in its command line, as the one child of a ``python -m
backing`` supervisor. The supervisor itself is never signalled: were it to exit,
honcho would stop the whole formation. One fault at a time: an action while the
last one's outage or recovery is still going is skipped.

Each action's ``recovery`` follow-up says when the outage began (the signal) and
ended (a server answering PING again), and ``recovery_s``, from then until a
``GET /hits`` through the proxy is answered 200 (read-only: it moves no counter):

    {"action": "recovery", "after": "redis-kill", "target": "redis:6379", "pid": 4201, "outcome": "ok",
     "outage_began": 1700000000.10, "outage_ended": 1700000000.21, "down_s": 0.11, "recovery_s": 0.04, "server": 4230}
"""
import signal
import time
import urllib.request
from collections import namedtuple
from pathlib import Path

import psutil

from backing.server import ping
from backing.supervisor import HOLD_FILE
from bench.chaos.vocabulary import DRY_RUN

Target = namedtuple("Target", "name")
POLL_S = 0.02


def is_supervisor(proc):
    """True for a ``python -m backing`` process (psutil.Process)."""
    try:
        return proc.cmdline()[-2:] == ["-m", "backing"]
    except psutil.Error:
        return False


def argument(cmdline, name):
    return cmdline[cmdline.index(name) + 1] if name in cmdline[:-1] else None


def names_port(cmdline, port):
    """True when a server's command line says ``--port <port>``, or its title (Valkey and Redis rewrite
    argv to ``valkey-server 127.0.0.1:6379``) ends in ``:<port>``."""
    words = " ".join(cmdline).split()
    return argument(words, "--port") == str(port) or (len(words) == 2 and words[1].endswith(f":{port}"))


def server_of(supervisor, port):
    """The supervisor's only running child, when it is a server on ``port``; else None."""
    try:
        children = [c for c in supervisor.children() if c.status() != psutil.STATUS_ZOMBIE]
        if len(children) != 1:
            return None
        server = children[0]
        listens = any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in server.net_connections("tcp"))
        return server if listens and names_port(server.cmdline(), port) else None
    except psutil.Error:
        return None


def find_server(port, supervisor=None):
    """(server, supervisor) as psutil processes for the backing service on ``port`` here, else (None, None).

    ``supervisor``, one found before, is tried first, so a frozen server needs no scan."""
    known = [supervisor] if supervisor is not None and supervisor.is_running() else []
    for candidate in known or (p for p in psutil.process_iter() if is_supervisor(p)):
        server = server_of(candidate, port)
        if server is not None:
            return server, candidate
    return None, None


def proxy_serves(proxy_url, timeout=1.0):
    """True when ``GET /hits`` through the proxy is answered 200 (it reads the counter, never moves it)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(f"{proxy_url}/hits", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


class BackingFaults:
    """The backing actions; ``record`` and ``background`` are the engine's, ``stopping`` its stop event."""

    def __init__(self, record, background, stopping, port, proxy_url=None, host="127.0.0.1", freeze_s=3.0,
                 outage_s=3.0, timeout=30.0, dry_run=False):
        self.record, self.background, self.stopping = record, background, stopping
        self.port, self.host, self.proxy_url = port, host, proxy_url
        self.freeze_s, self.outage_s, self.timeout, self.dry_run = freeze_s, outage_s, timeout, dry_run
        self.target = Target(f"redis:{port}")
        self.supervisor = None
        self.watcher = None  # the thread following the last fault through to its recovery

    def act(self, action):
        if self.watcher is not None and self.watcher.is_alive():
            return self.record(action, self.target, None, "skipped: the last backing fault is not over yet")
        server, self.supervisor = find_server(self.port, self.supervisor)
        if server is None:
            return self.record(action, self.target, None,
                               f"skipped: no server of a python -m backing supervisor listens on port {self.port}")
        sig, extra = {"redis-kill": (signal.SIGKILL, {}), "redis-restart": (signal.SIGTERM, {}),
                      "redis-freeze": (signal.SIGSTOP, {"duration_s": self.freeze_s}),
                      "redis-outage": (signal.SIGTERM, {"duration_s": self.outage_s})}[action]
        extra["supervisor"] = self.supervisor.pid
        if self.dry_run:
            return self.record(action, self.target, server.pid, DRY_RUN, signal=sig.name, **extra)
        hold = None
        if action == "redis-outage":
            hold = self.hold(server, time.time() + self.outage_s)
            extra["hold"] = str(hold)
        try:
            server.send_signal(sig)  # psutil refuses if the pid was reused since
        except psutil.NoSuchProcess:
            self.lift(hold)
            return self.record(action, self.target, server.pid, "skipped: the server exited first")
        event = self.record(action, self.target, server.pid, "ok", signal=sig.name, **extra)
        self.watcher = self.background(self.follow, event, server, hold)
        return event

    @staticmethod
    def hold(server, until):
        """Write the supervisor's hold file in the server's data folder, its working directory (``--dir``)."""
        hold = Path(server.cwd()) / HOLD_FILE
        hold.write_text(f"{until:.3f}\n")
        return hold

    @staticmethod
    def lift(hold):
        if hold is not None:
            hold.unlink(missing_ok=True)

    def follow(self, event, server, hold):
        """The fault's end (thaw, restore), then the server answering again, then the proxy serving a hit."""
        action, began = event["action"], event["time"]
        try:
            if action == "redis-freeze":
                self.stopping.wait(self.freeze_s)  # stop() cuts it short
                server.send_signal(signal.SIGCONT)
                self.record("thaw", self.target, server.pid, "ok", after=action, signal="SIGCONT",
                            frozen_s=round(time.time() - began, 3))
            else:
                self.wait(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE)
            if action == "redis-outage":
                self.stopping.wait(max(0.0, began + self.outage_s - time.time()))
                self.lift(hold)
                self.record("restore", self.target, server.pid, "ok", after=action,
                            held_s=round(time.time() - began, 3))
        finally:  # whatever happened, nothing stays frozen or held
            if action == "redis-freeze" and server.is_running():
                server.send_signal(signal.SIGCONT)
            self.lift(hold)
        if not self.wait(lambda: ping(self.host, self.port, timeout=0.2)):
            return self.record("recovery", self.target, server.pid, f"error: no server answering within "
                               f"{self.timeout:g}s", after=action, outage_began=began)
        ended = time.time()
        times = {"outage_began": began, "outage_ended": ended, "down_s": round(ended - began, 3)}
        new, _ = find_server(self.port, self.supervisor)
        times["server"] = new.pid if new is not None else None
        if self.proxy_url is None:
            return self.record("recovery", self.target, server.pid, "ok", after=action, **times)
        if not self.wait(lambda: proxy_serves(self.proxy_url)):
            return self.record("recovery", self.target, server.pid, f"error: no hit served through the proxy "
                               f"within {self.timeout:g}s", after=action, **times)
        return self.record("recovery", self.target, server.pid, "ok", after=action, **times,
                           recovery_s=round(time.time() - ended, 3))

    def wait(self, condition):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return True
            except psutil.Error:
                return True  # the process is gone
            time.sleep(POLL_S)
        return False
