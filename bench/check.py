"""Check a factor6 run from the command line: journals and ledger in, a verdict out.

The I/O edge of bench.checker. It reads the load generator's JSON Lines
journals and the run's ledger and counter, from Redis or from a file, prints
a table, writes the whole verdict as JSON, and exits 0 only for a valid run.

    $ python -m bench.check --journal 'journals/*.jsonl' --run run42 \\
          --redis-url redis://127.0.0.1:6379/0 --json report.json
    $ python -m bench.check --journal 'journals/*.jsonl' --run run42 --ledger-file ledger.json

Exit status: 0 valid, 1 invalid, 2 when no verdict can be trusted (bad usage,
no journal, no event for the run, an unreadable ledger, Redis unreachable, a
key invoked twice...). A ledger file is ``{"ledger": [entries], "counter_start":
int, "counter_end": int}``; the counters may be null when unknown.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import redis

from bench import checker

JOURNAL_CHUNK = 1 << 20  # bytes of journal lines parsed at once: bounded memory, few Python steps a line
LEDGER_CHUNK = 10_000  # entries per LRANGE: bounded memory and no long-blocking command
SHOWN = 3  # items per category on the console; the JSON report has them all


class InputError(Exception):
    """The check cannot be made."""


@dataclass
class Source:
    """What was read for the check, and what was wrong with it."""

    run: str
    journals: list[str] = field(default_factory=list)
    ledger: str = ""
    ledger_length: int = 0  # entries in the ledger snapshot
    events: int = 0
    other_runs: int = 0  # events of other runs' keys, skipped
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def find_journals(patterns: list[str]) -> list[str]:
    paths = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise InputError(f"no journal matches {pattern!r}")
        paths += matches
    return paths


def read_journals(source: Source) -> Iterator[dict]:
    """Stream the run's events from every journal; a truncated last line (a killed client) is a warning."""
    prefix = source.run + ":"
    for path in source.journals:
        with open(path, encoding="utf-8") as file:
            lineno = 1
            lines = file.readlines(JOURNAL_CHUNK)
            while lines:
                following = file.readlines(JOURNAL_CHUNK)  # read ahead, to know which line is the last
                for event in _parse_lines(source, path, lineno, lines, last=not following):
                    key = event.get("key")
                    if type(key) is str and not key.startswith(prefix):
                        source.other_runs += 1
                    else:
                        source.events += 1
                        yield event
                lineno += len(lines)
                lines = following


def _parse_lines(source: Source, path: str, lineno: int, lines: list[str], last: bool) -> list[dict]:
    """The JSON objects on these lines, the first of them numbered ``lineno``."""
    try:  # one parse for the lot, in the common case where every line is sound
        events = json.loads("[" + ",".join(lines) + "]")
        if len(events) == len(lines) and all(type(event) is dict for event in events):
            return events
    except ValueError:
        pass
    events = []
    for number, line in enumerate(lines, lineno):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            if last and number == lineno + len(lines) - 1:
                source.warnings.append(f"{path}:{number}: truncated last line ignored")
            else:
                source.errors.append(f"{path}:{number}: not JSON")
            continue
        if type(event) is dict:
            events.append(event)
        else:
            source.errors.append(f"{path}:{number}: not a JSON object")
    return events


def _ledger_entries(source: Source, items: Iterable[Any]) -> Iterator[dict]:
    for index, item in enumerate(items):
        if isinstance(item, (bytes, str)):
            try:
                item = json.loads(item)
            except ValueError:
                source.errors.append(f"{source.ledger}[{index}]: not JSON")
                continue
        if isinstance(item, dict):
            yield item
        else:
            source.errors.append(f"{source.ledger}[{index}]: not a JSON object")


def read_ledger_file(source: Source, path: str) -> tuple[Iterator[dict], int | None, int | None]:
    source.ledger = path
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except ValueError as error:
        raise InputError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("ledger"), list):
        raise InputError(f'{path}: expected {{"ledger": [...], "counter_start": ..., "counter_end": ...}}')
    counters = [data.get(name) for name in ("counter_start", "counter_end")]
    if any(value is not None and type(value) is not int for value in counters):
        raise InputError(f"{path}: counter_start and counter_end must be integers or null")
    return _ledger_entries(source, data["ledger"]), *counters


def run_record(run: str) -> str:
    """The Redis hash of a run: counter_start when it began; counter_end, ledger_length once sealed."""
    return f"factor6:run:{run}"


def start_run(client: redis.Redis, run: str, ttl: int) -> None:
    """Note the counter before the run's first hit; kept as long as the run's ledger."""
    client.hset(run_record(run), "counter_start", int(client.get("hits") or 0))
    client.expire(run_record(run), ttl)


def seal_run(client: redis.Redis, run: str, counter_end: int, ledger_length: int) -> None:
    """Note how the run ended, so a later check is not misled by hits made after it."""
    client.hset(run_record(run), mapping={"counter_end": counter_end, "ledger_length": ledger_length})


def read_redis(source: Source, url: str) -> tuple[Iterator[dict], int | None, int | None]:
    """The run's ledger and counters, as one consistent snapshot."""
    client = redis.Redis.from_url(url)
    source.ledger = f"factor6:ledger:{source.run}"  # not the URL, which may hold a password
    with client.pipeline(transaction=True) as pipe:
        pipe.get("hits").llen(source.ledger).hmget(run_record(source.run), "counter_start", "counter_end", "ledger_length")
        hits, length, (start, end, sealed_length) = pipe.execute()
    if end is not None:  # a concluded run: judge it as it stood then, whatever came after
        hits, length = end, int(sealed_length)
    source.ledger_length = length
    if start is None:
        source.warnings.append(f"factor6:run:{source.run} has no counter_start: counter delta not checked")
    if hits is None and start is not None:
        hits = b"0"  # INCR treats a missing counter as 0: nothing moved it during the run
    return _ledger_entries(source, _ledger_pages(client, source.ledger, length)), _int(start), _int(hits)


def _ledger_pages(client: redis.Redis, key: str, length: int) -> Iterator[bytes]:
    # Web processes only RPUSH, so the first `length` entries are exactly those
    # the snapshot's counter counted, however long the paging takes.
    for start in range(0, length, LEDGER_CHUNK):
        yield from client.lrange(key, start, min(start + LEDGER_CHUNK, length) - 1)


def _int(raw: bytes | None) -> int | None:
    try:
        return None if raw is None else int(raw)
    except ValueError:
        raise InputError(f"counter {raw!r} is not an integer") from None


def describe(item: dict) -> str:
    if "first" in item:
        return str(item["first"]) if item["first"] == item["last"] else f"{item['first']}-{item['last']}"
    fields = ", ".join(f"{name}={value}" for name, value in item.items() if name != "reason")
    return f"{item['reason']}: {fields}" if "reason" in item else fields


def render(source: Source, verdict: checker.Verdict | None, status: int) -> str:
    """The console table: what was read, each category's count and first items, then the verdict."""
    lines = [f"run {source.run}: {source.events:,} events from {len(source.journals)} journal(s),"
             f" ledger {source.ledger or '-'}"]
    if verdict is not None:
        stats = verdict.stats
        outcomes = ", ".join(f"{count:,} {kind}" for kind, count in sorted(stats["outcomes"].items()))
        lines += [
            f"{stats['operations']:,} operations ({outcomes or 'none'}),"
            f" {stats['applications']:,} applications,"
            f" counter {stats['counter_start']} -> {stats['counter_end']}",
            "",
            f"{'category':<12}{'count':>12}  items",
        ]
        for name, count in verdict.counts.items():
            items = getattr(verdict, name) if name != "ok" else []
            shown = "; ".join(describe(item) for item in items[:SHOWN])
            more = f"; and {len(items) - SHOWN:,} more" if len(items) > SHOWN else ""
            lines.append(f"{name:<12}{count:>12,}  {shown}{more}".rstrip())
        lines.append("")
    problems = [("warning", message) for message in source.warnings]
    problems += [("error", message) for message in source.errors + (verdict.errors if verdict else [])]
    for kind, message in problems[:10]:
        lines.append(f"{kind}: {message}")
    if len(problems) > 10:
        lines.append(f"... and {len(problems) - 10:,} more warnings and errors in the JSON report")
    if status == 2:
        lines.append("NO VERDICT: input errors")
    else:
        lines.append("VALID" if status == 0 else f"INVALID: {', '.join(verdict.violations)}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--journal", action="extend", nargs="+", required=True, metavar="GLOB",
                        help="journal files or quoted globs such as 'journals/*.jsonl'")
    parser.add_argument("--run", required=True, help="the run id, the keys' prefix before the first ':'")
    ledger = parser.add_mutually_exclusive_group()
    ledger.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                        help="where the ledger and counter are (default: $REDIS_URL, else %(default)s)")
    ledger.add_argument("--ledger-file", help="an offline ledger instead of Redis")
    parser.add_argument("--json", metavar="REPORT",
                        help="write the whole verdict there as JSON ('valid' only with exit status 0)")
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
            ledger, counter_start, counter_end = read_redis(source, args.redis_url)
        verdict = checker.check(read_journals(source), ledger, counter_start, counter_end, as_of=as_of)
    except (InputError, OSError, UnicodeDecodeError, redis.RedisError) as error:
        source.errors.append(str(error))
    if verdict is not None and not source.events:
        source.errors.append(f"no journal event for run {args.run!r} ({source.other_runs:,} of other runs)")
    trusted = verdict is not None and not source.errors and not verdict.errors
    status = (0 if verdict.valid else 1) if trusted else 2
    print(render(source, verdict, status))
    if args.json:
        # Written whatever the status, so a stale report can never pass for this run's.
        report = {"run": args.run, "status": status, "valid": status == 0, "source": vars(source)}
        if verdict is not None:
            report |= {name: value for name, value in verdict.to_dict().items() if name != "valid"}
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=1)
            file.write("\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
