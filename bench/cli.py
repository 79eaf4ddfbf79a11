"""``factor6``, the command a pip install gives: ``factor6 probe APP_DIR ...`` is scripts/probe, ``factor6 check ...``
is scripts/check; the rest of each command line goes to it as it is.

    $ factor6 probe examples/stateless-redis --junit probe.xml
    $ factor6 check --web 4 --duration 30
"""
import sys

COMMANDS = {"probe": "bench.probe.command", "check": "bench.harness.check"}
USAGE = "usage: factor6 {probe,check} [arguments] (factor6 probe --help, factor6 check --help)"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(f"factor6: {f'unknown command {argv[0]!r}' if argv else 'no command'}; {USAGE}", file=sys.stderr)
        return 2
    from importlib import import_module

    return import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
