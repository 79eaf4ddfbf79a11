"""``python -m backing``: supervise the formation's Redis-compatible server (see backing/supervisor.py).

Exit status: 0 after SIGTERM/SIGINT/SIGQUIT, 1 when the server keeps dying right
after its start, 2 for a bad setting, a data folder that cannot be written or no
server binary.
"""
import sys

from backing.config import BackingConfig
from backing.server import NoServer, default_binary
from backing.supervisor import Supervisor, say


def main(env=None):
    try:
        config = BackingConfig.from_env(env)
        binary = config.server or ("" if config.external else default_binary())
    except (ValueError, NoServer) as exc:
        say(f"cannot start: {exc}")
        return 2
    return Supervisor(config, binary).run()


if __name__ == "__main__":
    sys.exit(main())
