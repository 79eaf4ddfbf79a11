"""``python -m backing``: supervise the formation's Redis-compatible server (see backing/supervisor.py).

It takes no arguments: its settings come from the environment (backing/config.py).
``--help`` prints this text; any other argument is refused in one line, before anything starts.

Exit status: 0 after SIGTERM/SIGINT/SIGQUIT, 1 when the server keeps dying right
after its start, 2 for a bad setting or argument, a data folder that cannot be written or no
server binary.
"""
import sys

from backing.config import BackingConfig
from backing.server import NoServer, default_binary
from backing.supervisor import Supervisor, say


def main(env=None, argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--help"], ["-h"]):
        print(__doc__.strip())
        return 0
    if argv:
        say(f"refused {argv[0]!r}: python -m backing takes no arguments; its settings come from the environment"
            " (backing/config.py)")
        return 2
    try:
        config = BackingConfig.from_env(env)
        binary = config.server or ("" if config.external else default_binary())
    except (ValueError, NoServer) as exc:
        say(f"cannot start: {exc}")
        return 2
    return Supervisor(config, binary).run()


if __name__ == "__main__":
    sys.exit(main())
