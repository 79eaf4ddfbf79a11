"""One web instance the scaler started: its process, and where it is in its life.

    instance = OwnedInstance("web.5")
    instance.launch(command, env, now=time.monotonic())   # sh -c '<Procfile web command>' on a free PORT
    instance.terminate()      # SIGTERM: the master deregisters, then finishes its in-flight requests
    instance.kill()           # SIGKILL the master and its workers

States: ``starting`` (launched, not registered yet), ``serving`` (registered),
``draining`` (SIGTERM sent, waiting for it to exit) and ``waiting`` (crashed, or
not launched yet: launched when ``due``).

Each instance runs in a session of its own, so a Ctrl-C in honcho's terminal
reaches honcho, which stops the scaler, which stops its instances in order. On
Linux each also gets SIGTERM as its parent-death signal: should the scaler itself
be SIGKILLed, its instances still deregister, drain and exit rather than live on
as orphans. (The signal survives ``exec``, as in the Procfile's ``exec gunicorn``;
a command that forks instead would pass it on to nobody.)
"""
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from scaler.processes import free_port, kill_tree

STARTING, SERVING, DRAINING, WAITING = "starting", "serving", "draining", "waiting"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent():
    """A ``preexec_fn`` giving the child SIGTERM when this process dies; None where prctl does not exist."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it
    parent = os.getpid()

    def arrange():
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody will signal us
            os._exit(1)

    return arrange


@dataclass
class OwnedInstance:
    name: str
    state: str = WAITING
    since: float = 0.0  # monotonic time it entered its state
    due: float = 0.0  # when a waiting instance is (re)launched
    launched: float = 0.0
    popen: subprocess.Popen = None
    port: int = 0
    address: str = None  # as registered, once seen
    restarts: int = 0
    fast_crashes: int = 0  # crashes in a row, each soon after its launch

    def launch(self, command, env, now, preexec_fn=None):
        self.port = free_port()
        self.popen = subprocess.Popen(
            ["/bin/sh", "-c", command], env={**env, "PORT": str(self.port), "HONCHO_PROCESS_NAME": self.name},
            start_new_session=True, preexec_fn=preexec_fn)
        self.address, self.launched = None, now
        self.enter(STARTING, now)

    def enter(self, state, now):
        self.state, self.since = state, now

    def alive(self):
        """Not yet reaped: until then its pid cannot belong to anyone else, so signalling it is safe."""
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self):
        return None if self.popen is None else self.popen.poll()

    def terminate(self):
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def kill(self):
        if self.alive():
            kill_tree(self.popen.pid)
            self.popen.wait()

    def describe(self):
        return {"name": self.name, "state": self.state, "port": self.port, "address": self.address,
                "pid": self.popen.pid if self.popen else None, "restarts": self.restarts}
