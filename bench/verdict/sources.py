"""Where a check's input comes from: the clients' JSON Lines journals, and a run's ledger and counter.

    source = Source(run="r1")
    source.journals = find_journals(["reports/x/journal.jsonl"])
    ledger, counter_start, counter_end = read_redis(source, client)    # or read_ledger_file(source, path)
    verdict = checker.check(read_journals(source), ledger, counter_start, counter_end)

The I/O edge of the pure checker. Everything that is wrong with the input is
noted in ``source.errors`` (making the verdict unknown) or ``source.warnings``.
A ledger file is ``{"ledger": [entries], "counter_start": int, "counter_end":
int}``; the counters may be null when unknown.
"""
from __future__ import annotations

import glob
import json
import time
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator

import msgspec
import redis

from common.schema import COUNTER, run_ledger, run_record

JOURNAL_CHUNK = 1 << 20  # bytes of journal lines parsed at once: bounded memory, few Python steps a line
# Parses journals and ledger files twice as fast as json.loads. It takes only strict JSON (no NaN, no lone
# surrogate, no number beyond a double's range) and keeps integers of any size, so what it parses json.loads
# would parse alike; what it refuses is left to json.loads.
JSON = msgspec.json.Decoder()
LEDGER_CHUNK = 10_000  # entries per LRANGE: bounded memory and no long-blocking command


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
    return chain.from_iterable(_run_chunks(source))  # no Python step an event between the chunks and the checker


def _run_chunks(source: Source) -> Iterator[list[dict]]:
    prefix = source.run + ":"
    for path in source.journals:
        with open(path, "rb") as file:  # bytes: the decoder reads UTF-8 itself, with no copy as str
            lineno = 1
            lines = file.readlines(JOURNAL_CHUNK)
            while lines:
                following = file.readlines(JOURNAL_CHUNK)  # read ahead, to know which line is the last
                events = _parse_lines(source, path, lineno, lines, last=not following)
                ours = _of_run(events, prefix)
                source.events += len(ours)
                source.other_runs += len(events) - len(ours)
                yield ours
                lineno += len(lines)
                lines = following


def _of_run(events: list[dict], prefix: str) -> list[dict]:
    """The events whose key is no string or starts with ``prefix``, the others being another run's."""
    try:  # every key a string of this run, as in the common case: found in C
        if all(map(str.startswith, map(itemgetter("key"), events), repeat(prefix))):
            return events
    except (KeyError, TypeError):  # an event without a key, or with one that is no string
        pass
    return [event for event in events if type(key := event.get("key")) is not str or key.startswith(prefix)]


def _parse_lines(source: Source, path: str, lineno: int, lines: list[bytes], last: bool) -> list[dict]:
    """The JSON objects on these lines, the first of them numbered ``lineno``; as ``json.loads`` reads them."""
    try:  # one parse for the lot, in the common case where every line is sound
        events = JSON.decode(b"[" + b",".join(lines) + b"]")
        if len(events) == len(lines) and all(type(event) is dict for event in events):
            return events
    except msgspec.DecodeError:
        pass
    events = []
    for number, raw in enumerate(lines, lineno):
        line = raw.decode("utf-8")  # a file not in UTF-8 is no journal: UnicodeDecodeError, as a text read gives
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
        if type(item) is dict:  # a ledger file's entries, already parsed
            yield item
            continue
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
    with open(path, "rb") as file:
        text = file.read()
    try:
        data = JSON.decode(text)
    except msgspec.DecodeError:
        try:  # what the strict decoder refuses json may take; else json's error is the one to name
            data = json.loads(text.decode("utf-8"))
        except ValueError as error:
            raise InputError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("ledger"), list):
        raise InputError(f'{path}: expected {{"ledger": [...], "counter_start": ..., "counter_end": ...}}')
    counters = [data.get(name) for name in ("counter_start", "counter_end")]
    if any(value is not None and type(value) is not int for value in counters):
        raise InputError(f"{path}: counter_start and counter_end must be integers or null")
    return _ledger_entries(source, data["ledger"]), *counters


def read_redis(source: Source, client: redis.Redis) -> tuple[Iterator[dict], int | None, int | None]:
    """The run's ledger and counters, as one consistent snapshot."""
    source.ledger = run_ledger(source.run)  # not the URL, which may hold a password
    with client.pipeline(transaction=True) as pipe:
        pipe.get(COUNTER).llen(source.ledger).hmget(run_record(source.run), "counter_start", "counter_end", "ledger_length")
        hits, length, (start, end, sealed_length) = pipe.execute()
    if end is not None:  # a concluded run: judge it as it stood then, whatever came after
        hits, length = end, int(sealed_length)
    source.ledger_length = length
    if start is None:
        source.warnings.append(f"{run_record(source.run)} has no counter_start: counter delta not checked")
    if hits is None and start is not None:
        hits = b"0"  # INCR treats a missing counter as 0: nothing moved it during the run
    return _ledger_entries(source, _ledger_pages(client, source.ledger, length)), _int(start), _int(hits)


class RedisGone(redis.ConnectionError):
    """Redis did not answer, and the wait for it is over: the message says how long it waited, and why it stopped."""


def patiently(call: Callable[[], Any], patience_s: float = 0.0, pause_s: float = 0.5,
              prospect: Callable[[], tuple[bool, str]] | None = None, grace_s: float = 0.0) -> Any:
    """``call()``, tried again on a Redis error for up to ``patience_s`` seconds, else ``RedisGone``.

    For reads and idempotent writes only: at a run's end a failover of the primary may be under way
    (connections refused, timeouts, a demoted primary's READONLY or a transaction it aborted), and
    the conclusion must wait for the new one rather than end with no verdict. ``prospect()`` says,
    after each failure, whether something could bring Redis back and what (Sentinels answering, a
    supervisor running): while nothing could, the wait ends after ``grace_s``."""
    began = time.monotonic()
    while True:
        try:
            return call()
        except redis.RedisError as error:
            waited = time.monotonic() - began
            hopeful, why = prospect() if prospect else (True, "")
            if waited >= (patience_s if hopeful else grace_s):
                if not hopeful:
                    raise RedisGone(f"Redis did not answer for {waited:.1f} s, and nothing could bring it back"
                                    f" ({why}): {error}") from error
                raise RedisGone(f"Redis did not answer for {waited:.1f} s{f' although {why}' if why else ''}:"
                                f" {error}") from error
            time.sleep(pause_s)


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
