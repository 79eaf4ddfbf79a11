"""The argument types every bench command shares, and a parser that refuses bad input in one line.

    parser = OneLineParser(prog="scripts/check")
    parser.add_argument("--web", type=number(int, least=1), default=4)
    parser.add_argument("--duration", type=number(float, above=0), default=30)
    parser.add_argument("--chaos-mix", type=chaos_mix, default="kill,term")

    >>> number(float, above=0)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be more than 0, not 0
    >>> number(int, least=1)("two")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a whole number, not 'two'
    >>> chaos_mix("kill=2,term")
    'kill=2,term'

Every check happens while the arguments are parsed, before anything starts:
``scripts/check``, ``scripts/demo``, ``python -m bench.chaos`` and the Locust
plugin's options (bench.load.options) refuse the same values with the same words.
"""
import argparse
import math
import os
import time
import uuid
from pathlib import Path

from bench.chaos.vocabulary import parse_mix


class OneLineParser(argparse.ArgumentParser):
    """argparse, with each refusal one line on stderr (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def number(convert, least=None, above=None, hint=""):
    """An argparse type: ``convert(text)``, refused unless >= ``least`` and > ``above``."""
    kind = "a whole number" if convert is int else "a number"

    def parse(text):
        try:
            value = convert(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {kind}, not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if least is not None and value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}{hint}, not {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be more than {above}{hint}, not {text}")
        return value

    return parse


def share(text):
    """An argparse type: a share between 0 and 1, such as 0.5 for half."""
    value = number(float, least=0)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"is a share between 0 and 1, not {text}")
    return value


def chaos_mix(text):
    """An argparse type: the mix as given, once bench.chaos.vocabulary accepts it (unknown names, weights)."""
    try:
        parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def writable_folder(text):
    """An argparse type: the folder, made if missing, refused when it cannot be made or written."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{path} cannot be made: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{path} is not writable")
    return path


def new_run_folder(parser, label):
    """A fresh ``reports/<time>-<label>-<random>`` folder, or the parser's one-line refusal. The random part:
    two runs started in the same second must not share a folder."""
    from bench.paths import ROOT

    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-{uuid.uuid4().hex[:6]}"
    try:
        return writable_folder(ROOT / "reports" / name)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"the report folder {exc}; give another with --report-dir")


# What a hit is, for scripts/check --hits and Locust's --hits (bench/locustfile.py): keyed is POST /hits with
# its Idempotency-Key, retried; keyless is without one, tried once, as a client without keys must;
# keyless-retried retries it anyway (wrong on purpose: a retry may count twice); page is the seed's GET /, once.
HIT_KINDS = ("keyed", "keyless", "keyless-retried", "page")
