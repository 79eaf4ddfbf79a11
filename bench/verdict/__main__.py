"""Check a factor6 run from the command line: journals and ledger in, a verdict out.

    $ python -m bench.verdict --journal 'journals/*.jsonl' --run run42 \\
          --redis-url redis://127.0.0.1:6379/0 --json report.json
    $ python -m bench.verdict --journal 'journals/*.jsonl' --run run42 --ledger-file ledger.json
    $ python -m bench.verdict --journal reports/x/journal.jsonl --run run42 --workload hits,session

It prints a table, writes the whole verdict as JSON, and exits with the
verdict's status: 0 valid, 1 invalid, 2 unknown (bad usage, no journal, no
event for the run, an unreadable ledger, Redis unreachable, a key invoked
twice...). Without ``--redis-url`` the Redis is ``$REDIS_URL``, else
``$HOST_REDIS``/``$PORT_REDIS`` as every process type reads them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import redis

from bench.verdict import render, workloads
from bench.verdict.sources import InputError, Source, find_journals, read_journals, read_ledger_file, read_redis
from common.settings import redis_url
from common.redis_client import connect


def workload_list(text: str) -> tuple[str, ...]:
    try:
        return workloads.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.verdict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--journal", action="extend", nargs="+", required=True, metavar="GLOB",
                        help="journal files or quoted globs such as 'journals/*.jsonl'")
    parser.add_argument("--run", required=True, help="the run id, the keys' prefix before the first ':'")
    ledger = parser.add_mutually_exclusive_group()
    ledger.add_argument("--redis-url", default=redis_url(os.environ),
                        help="where the ledger and counter are (default from the environment: %(default)s)")
    ledger.add_argument("--ledger-file", help="an offline ledger instead of Redis")
    parser.add_argument("--json", metavar="REPORT",
                        help="write the whole verdict there as JSON, whatever its status")
    parser.add_argument("--workload", default="hits", type=workload_list,
                        help=f"the workloads the run had, each judged by its checker: {', '.join(workloads.WORKLOADS)}")
    parser.add_argument("--live", action="store_true",
                        help="the run is still going: completions after the ledger read count as in flight")
    args = parser.parse_args(argv)
    if args.live and args.ledger_file:
        parser.error("--live reads Redis, not --ledger-file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = Source(run=args.run)
    verdict = None
    try:
        source.journals = find_journals(args.journal)
        as_of = time.time() if args.live else None  # taken before the snapshot, so never after it
        if args.ledger_file:
            ledger, counter_start, counter_end = read_ledger_file(source, args.ledger_file)
        else:
            ledger, counter_start, counter_end = read_redis(source, connect(args.redis_url))
        verdict = workloads.check(args.workload, read_journals(source), ledger, counter_start, counter_end,
                                  as_of=as_of)
    except (InputError, OSError, UnicodeDecodeError, redis.RedisError) as error:
        source.errors.append(str(error))
    verdict = render.with_source(source, verdict)
    print(render.console(source, verdict))
    if args.json:
        # Written whatever the status, so a stale report can never pass for this run's.
        render.write_json(args.json, render.report_json(source, verdict))
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
