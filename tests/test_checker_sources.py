"""The checker's input edge: journals read by the fast decoder give what ``json.loads`` gives, line by line.

bench/verdict/sources.py parses a chunk of journal lines in one call of
msgspec's decoder, and leaves to ``json.loads`` whatever that refuses. Each
journal here mixes the load generator's own lines with odd ones (extra fields,
another key order, unicode, missing fields, integers beyond 64 bits, JSON that
only Python's json takes, a truncated last line), and what the checker reads
from it must be what a plain ``json.loads`` of each line gives: the same
events, and so the same columns and verdict. Also ``patiently`` on a real
closed port: it stops after the grace when nothing could bring Redis back.
"""
import json
import time

import pytest

from bench.verdict import sources, workloads
from bench.verdict.model import index_history
from bench.verdict.sources import RedisGone, Source, find_journals, patiently, read_journals
from tests.procs import free_port
from common.redis_client import connect

pytestmark = pytest.mark.fast

RUN = "r1"
# As bench/load/journal.py writes them (through json.dumps), then the odd ones, all of the run unless said.
USUAL = [
    '{"type": "invoke", "key": "r1:a1b2c3d4.1:1", "time": 1700000000.123456}',
    '{"type": "ok", "key": "r1:a1b2c3d4.1:1", "time": 1700000000.2, "number": 11}',
    '{"type": "invoke", "key": "r1:a1b2c3d4.1:2", "time": 1700000000.3, "keyless": true}',
    '{"type": "ok", "key": "r1:a1b2c3d4.1:2", "time": 1700000000.4, "number": 12, "tries": 2}',
    '{"type": "invoke", "key": "r1:a1b2c3d4.1:3", "time": 1700000000.5}',
    '{"type": "fail", "key": "r1:a1b2c3d4.1:3", "time": 1700000000.6, "tries": 3}',
    '{"type": "invoke", "key": "r1:a1b2c3d4.1:4", "time": 1700000000.7}',
    '{"type": "info", "key": "r1:a1b2c3d4.1:4", "time": 1700000000.8}',
]
STRICT_ODD = [
    '{"type":"invoke","key":"r1:x:1","time":1.5,"process":"c3","note":{"nested":[1,2,{"k":null}]}}',  # extra fields
    '{"number": 13, "time": 1.6, "key": "r1:x:1", "type": "ok"}',  # another order, no spaces after ':' elsewhere
    '{"type": "invoke", "key": "r1:caf\u00e9-\U0001f600:1", "time": 2}',  # raw UTF-8 and an int time
    '{"type": "ok", "key": "r1:caf\\u00e9-\\ud83d\\ude00:1", "time": 2.5, "number": 14}',  # the same key, escaped
    '{"type": "invoke", "key": "r1:x:2"}',  # no time
    '{"type": "ok", "key": "r1:x:2", "time": 3.0}',  # no number: an input error
    '{"type": "invoke", "key": "r1:x:3", "time": 3.1}',
    '{"type": "ok", "key": "r1:x:3", "time": 3.2, "number": 1180591620717411303424}',  # 2**70
    '{"type": "invoke", "key": "r2:x:1", "time": 3.3}',  # another run's
    '{"type": "invoke", "time": 3.4}',  # no key
    '{"type": "invoke", "key": 5, "time": 3.5}',  # a key that is no string
    '  {"type": "invoke", "key": "r1:x:4", "time": 3.6}  ',
]
LENIENT_ODD = [  # json.loads takes these, the strict decoder does not
    '{"type": "invoke", "key": "r1:y:1", "time": NaN}',
    '{"type": "ok", "key": "r1:y:1", "time": 1e400, "number": 15}',
    '{"type": "invoke", "key": "r1:y:\\ud800", "time": 4.0}',  # a lone surrogate
    '',  # a blank line
    '[1, 2]',  # not an object: an input error
    '{"type": "invoke", "key": "r1:y:2", "time": 4.1}',
]
TRUNCATED = '{"type": "ok", "key": "r1:y:2", "ti'
LEDGER = [{"key": "r1:a1b2c3d4.1:1", "number": 11, "instance": "web.1"},
          {"key": "r1:a1b2c3d4.1:4", "number": 16, "instance": "web.2"},
          {"key": "r1:x:1", "number": 13, "instance": "web.1"}]


def line_by_line(lines):
    """What the checker must read: each whole line through json.loads, this run's events only."""
    events = [json.loads(line) for line in lines if line.strip()]
    return [event for event in events if type(event) is dict and
            (type(event.get("key")) is not str or event["key"].startswith(RUN + ":"))]


def read(tmp_path, name, lines, tail=""):
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(("".join(line + "\n" for line in lines) + tail).encode("utf-8", "surrogatepass"))
    source = Source(run=RUN, journals=find_journals([str(path)]))
    return source, list(read_journals(source))


def same_columns(left, right):
    # NaN != NaN: compare the times by their text.
    return ([repr(list(getattr(left, column))) for column in ("status", "number", "invoked", "acked_at", "acked")]
            + [left.position, left.errors, left.keyless]) == (
        [repr(list(getattr(right, column))) for column in ("status", "number", "invoked", "acked_at", "acked")]
        + [right.position, right.errors, right.keyless])


@pytest.mark.parametrize("chunk", [sources.JOURNAL_CHUNK, 64])  # 64 bytes: chunks of a line or two, some mixed
def test_the_fast_decoder_reads_every_line_as_json_loads_does(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(sources, "JOURNAL_CHUNK", chunk)
    strict = USUAL + STRICT_ODD
    sources.JSON.decode(("[" + ",".join(strict) + "]").encode())  # the strict lines are the fast decoder's to read
    for name, lines, tail in [("strict", strict, ""), ("mixed", strict + LENIENT_ODD, TRUNCATED)]:
        source, events = read(tmp_path, name, lines, tail)
        expected = line_by_line(lines)
        assert json.dumps(events) == json.dumps(expected)  # also every type: an int stays an int, NaN a float
        assert source.events == len(expected) and source.other_runs == 1
        assert same_columns(index_history(events), index_history(expected))
        got = workloads.check(("hits",), events, LEDGER, 10, 16).to_dict()
        assert got == workloads.check(("hits",), expected, LEDGER, 10, 16).to_dict() and got["status"] == "unknown"
    assert source.warnings == [f"{tmp_path / 'mixed.jsonl'}:{len(lines) + 1}: truncated last line ignored"]
    assert source.errors == [f"{tmp_path / 'mixed.jsonl'}:{lines.index('[1, 2]') + 1}: not a JSON object"]


def test_a_journal_not_in_utf8_is_refused_as_before(tmp_path):
    (tmp_path / "latin1.jsonl").write_bytes(b'{"type": "invoke", "key": "r1:caf\xe9:1", "time": 1.0}\n')
    with pytest.raises(UnicodeDecodeError):
        list(read_journals(Source(run=RUN, journals=[str(tmp_path / "latin1.jsonl")])))


def test_patiently_gives_up_after_the_grace_when_nothing_could_bring_redis_back():
    closed = connect(f"redis://127.0.0.1:{free_port()}/0", timeout=1, env={})  # as the runs connect: no retries
    asked = []

    def hopeless():
        asked.append(time.monotonic())
        return False, "no Sentinel configured, no supervisor runs for /nowhere"

    began = time.monotonic()
    with pytest.raises(RedisGone) as gone:
        patiently(closed.ping, patience_s=600, pause_s=0.1, prospect=hopeless, grace_s=1)
    assert 1 <= time.monotonic() - began < 300 and len(asked) >= 2  # tried again during the grace, then stopped
    message = str(gone.value)
    assert message.startswith("Redis did not answer for 1.") and "s, and nothing could bring it back" in message
    assert "(no Sentinel configured, no supervisor runs for /nowhere)" in message and "onnect" in message


def test_patiently_waits_its_whole_patience_while_something_could_bring_redis_back():
    closed = connect(f"redis://127.0.0.1:{free_port()}/0", timeout=1, env={})  # as the runs connect: no retries
    with pytest.raises(RedisGone) as gone:
        patiently(closed.ping, patience_s=1, pause_s=0.1, prospect=lambda: (True, "the Sentinel at h:1 answers"))
    assert " although the Sentinel at h:1 answers: " in str(gone.value)
