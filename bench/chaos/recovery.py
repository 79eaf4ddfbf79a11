"""How the engine times a recovery: until an instance serves again without the workers a fault took.

    found = serving_again("127.0.0.1:5101", master=4242, replaced={4251}, before={4250, 4251},
                          started=time.monotonic(), timeout=30)
    found   # {"recovery_s": 0.389, "replacement": [4263], "served_by": 4263}; None if not within timeout

``recovery_s`` runs from the signal until a new worker exists under the master,
none of the replaced ones does, and a direct ``GET /healthz`` is answered by a
live worker. A reload under way when the signal came has already started the
workers the master wants, so none replaces the one taken: once the instance has
served for ``NO_REPLACEMENT_S`` without one, it has recovered with nothing to time.
"""
import time

from bench.chaos.targets import healthz_pid
from scaler.formation import workers_of

NO_REPLACEMENT_S = 5.0  # serving without a new worker this long after the signal: none is coming
POLL_S = 0.05


def serving_again(address, master, replaced, before, started, timeout):
    deadline = started + timeout
    while time.monotonic() < deadline:
        current = {w.pid for w in workers_of(master)}
        if not current & replaced:
            served_by = healthz_pid(address)
            if served_by in current and current - before:
                return {"recovery_s": round(time.monotonic() - started, 3), "replacement": sorted(current - before),
                        "served_by": served_by}
            if served_by in current and time.monotonic() - started > NO_REPLACEMENT_S:
                return {"replacement": [], "served_by": served_by}
        time.sleep(POLL_S)
    return None
