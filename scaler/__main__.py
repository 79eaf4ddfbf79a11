"""The Procfile's ``scaler`` process type: adds and removes web instances while the formation runs.

    $ honcho start -c web=2          # the scaler runs with the rest, idle until asked
    $ scripts/scale web=4            # it starts web.3 and web.4 from the Procfile's web command
    $ REDIS_URL=redis://127.0.0.1:6379/0 python -m scaler     # or on its own, next to any formation

SIGTERM or SIGINT: every instance it started drains at once (deregistered
first), whatever is left after ``SCALER_STOP_TIMEOUT`` is SIGKILLed, and it
exits 0. A bad setting or Procfile exits 2. The
instances' own output goes to the scaler's, so under honcho it shows as
``scaler.1``'s. See scaler/supervisor.py for what each tick does.
"""
import logging
import os
import signal
import sys
import threading
import time

from scaler.config import ScalerConfig
from scaler.instances import die_with_parent
from scaler.procfile import command_of
from scaler.supervisor import PROCESS_TYPE, TICK_S, Supervisor
from common.redis_client import connect

log = logging.getLogger("scaler")


def main(env=os.environ):
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="scaler: %(message)s")
    try:
        config = ScalerConfig.from_env(env)
        command = command_of(config.procfile, PROCESS_TYPE)
    except (ValueError, OSError) as exc:
        log.error("bad setting: %s", exc)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    supervisor = Supervisor(config, connect(config.redis_url), command, dict(env), die_with_parent())
    log.info("%s instances from %s (%s), at most %d in all; waiting for a count in factor6:desired:%s",
             PROCESS_TYPE, config.procfile, command, config.max_instances, PROCESS_TYPE)
    try:
        while not stopping.wait(TICK_S):
            supervisor.tick(time.monotonic())
    finally:
        log.info("stopping %d instance(s)", len(supervisor.instances))
        supervisor.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
