"""Property tests of the consistency checker, and a small test of its command line.

Each property starts from a generated clean run (a history, its ledger and
counter), checks that it passes, or injects exactly one fault and checks that
the verdict fails and names the injected key or number in the right category.
No Redis needed: the command line is tested with ``--ledger-file``.
"""
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.verdict import __main__ as check_cli
from bench.paths import ROOT
from bench.verdict.checker import check, find_gaps
from bench.verdict.synthetic import OUTCOMES, SyntheticRun

pytestmark = pytest.mark.fast

SETTINGS = settings(max_examples=60, deadline=None)

@dataclass
class Run:
    events: list
    ledger: list
    counter_start: int
    counter_end: int
    outcomes: dict  # key -> a name from OUTCOMES

    def keys(self, *outcomes):
        return [key for key, outcome in self.outcomes.items() if outcome in outcomes]

    def applied_keys(self):
        return [key for key, outcome in self.outcomes.items() if OUTCOMES[outcome][1]]

    def number(self, key):
        return next(entry["number"] for entry in self.ledger if entry["key"] == key)

    def check(self):
        return check(self.events, self.ledger, self.counter_start, self.counter_end)


@st.composite
def runs(draw, must=()):
    """A clean run; ``must`` names outcomes it holds at least once each."""
    outcomes = draw(st.lists(st.sampled_from(sorted(OUTCOMES)), max_size=30)) + list(must)
    outcomes = draw(st.permutations(outcomes))
    # The server applies hits in any order, numbering them from the counter's start.
    applied = draw(st.permutations([i for i, outcome in enumerate(outcomes) if OUTCOMES[outcome][1]]))
    run = SyntheticRun("r1", outcomes, counter_start=draw(st.integers(0, 10**9)), clients=draw(st.integers(1, 4)),
                       applied=applied)
    # Journals of several clients merge in any order; a completion may come first.
    events = draw(st.permutations(list(run.history())))
    return Run(events, list(run.ledger()), run.counter_start, run.counter_end,
               {run.key(i): outcome for i, outcome in enumerate(outcomes)})


def named(items, **fields):
    """Whether one item holds all these fields."""
    return any(all(item.get(name) == value for name, value in fields.items()) for item in items)


def keys_of(items):
    return sorted(item["key"] for item in items)


def counter_items(items):
    return [item for item in items if "delta" in item]


@SETTINGS
@given(runs())
def test_a_clean_run_is_valid(run):
    verdict = run.check()
    assert verdict.valid, verdict.to_dict()
    assert verdict.errors == []
    assert verdict.ok == len(run.keys("ok"))
    assert keys_of(verdict.recovered) == sorted(run.keys("info-applied", "pending-applied"))
    assert keys_of(verdict.not_applied) == sorted(run.keys("info-not-applied", "pending-not-applied"))
    assert verdict.stats["applications"] == len(run.ledger)
    json.dumps(verdict.to_dict())


@SETTINGS
@given(runs())
def test_a_clean_run_is_valid_without_counter_figures(run):
    assert check(run.events, run.ledger).valid


@SETTINGS
@given(runs(must=["ok"]), st.data())
def test_an_acknowledged_hit_missing_from_the_ledger_is_lost(run, data):
    key = data.draw(st.sampled_from(run.keys("ok")))
    number = run.number(key)
    run.ledger = [entry for entry in run.ledger if entry["key"] != key]
    verdict = run.check()
    assert not verdict.valid
    assert named(verdict.lost, key=key, acknowledged=number, numbers=[])
    # The counter still counted it: it moved more than the ledger, which has a hole.
    assert verdict.gaps == [{"first": number, "last": number}]
    assert counter_items(verdict.duplicated)


@SETTINGS
@given(runs(must=["ok"]), st.data())
def test_an_acknowledged_hit_applied_with_another_number_is_lost(run, data):
    key = data.draw(st.sampled_from(run.keys("ok")))
    number = run.number(key)
    other = data.draw(st.integers(run.counter_start + 1, run.counter_end + 5).filter(lambda n: n != number))
    next(entry for entry in run.ledger if entry["key"] == key)["number"] = other
    verdict = run.check()
    assert not verdict.valid
    assert named(verdict.lost, key=key, acknowledged=number, numbers=[other])


@SETTINGS
@given(runs(must=["ok"]), st.data())
def test_a_key_applied_twice_is_duplicated(run, data):
    key = data.draw(st.sampled_from(run.applied_keys()))
    number = run.number(key)
    run.counter_end += 1
    run.ledger.append({"key": key, "number": run.counter_end, "instance": "web.9", "time": 99.0})
    verdict = run.check()
    assert verdict.violations == ["duplicated"]
    [item] = verdict.duplicated
    assert item["key"] == key and item["numbers"] == [number, run.counter_end]


@SETTINGS
@given(runs(must=["ok", "info-applied"]), st.data())
def test_a_number_given_to_two_keys_is_duplicated(run, data):
    first, second = data.draw(st.permutations(run.applied_keys()))[:2]
    number = run.number(first)
    next(entry for entry in run.ledger if entry["key"] == second)["number"] = number
    verdict = run.check()
    assert not verdict.valid
    assert named(verdict.duplicated, number=number, keys=sorted([first, second]))


@SETTINGS
@given(runs())
def test_an_entry_nobody_attempted_is_unexpected(run):
    run.counter_end += 1
    run.ledger.append({"key": "r1:ghost:1", "number": run.counter_end, "instance": "web.1", "time": 99.0})
    verdict = run.check()
    assert verdict.violations == ["unexpected"]
    assert named(verdict.unexpected, key="r1:ghost:1", numbers=[run.counter_end])


@SETTINGS
@given(runs(must=["fail"]), st.data())
def test_a_failed_hit_found_applied_is_unexpected(run, data):
    key = data.draw(st.sampled_from(run.keys("fail")))
    run.counter_end += 1
    run.ledger.append({"key": key, "number": run.counter_end, "instance": "web.1", "time": 99.0})
    verdict = run.check()
    assert verdict.violations == ["unexpected"]
    assert named(verdict.unexpected, key=key, numbers=[run.counter_end])


@SETTINGS
@given(runs())
def test_a_counter_moved_past_the_ledger_is_duplicated_and_leaves_a_gap(run):
    run.counter_end += 1
    verdict = run.check()
    assert verdict.violations == ["duplicated", "gaps"]
    assert counter_items(verdict.duplicated)[0]["delta"] == len(run.ledger) + 1
    assert verdict.gaps == [{"first": run.counter_end, "last": run.counter_end}]


@SETTINGS
@given(runs(must=["ok"]))
def test_a_counter_that_never_moved_is_lost(run):
    """A server counting in process memory: applications, but no shared count."""
    run.counter_end = run.counter_start
    verdict = run.check()
    assert not verdict.valid
    [item] = counter_items(verdict.lost)
    assert item["delta"] == 0 and item["applications"] == len(run.ledger)
    # Its numbers fall outside the run's (empty) range of the shared counter.
    assert {item["number"] for item in verdict.duplicated} == {entry["number"] for entry in run.ledger}


def skip_number(run, hole):
    """Renumber the run as if the counter had given ``hole`` to nobody."""
    for item in [*run.ledger, *run.events]:
        if item.get("number", -1) >= hole:
            item["number"] += 1
    run.counter_end += 1


@SETTINGS
@given(runs(must=["ok"]), st.data())
def test_a_skipped_number_is_a_gap(run, data):
    hole = data.draw(st.sampled_from([entry["number"] for entry in run.ledger]))
    skip_number(run, hole)
    verdict = run.check()
    assert verdict.violations == ["duplicated", "gaps"]
    assert verdict.gaps == [{"first": hole, "last": hole}]
    assert counter_items(verdict.duplicated)


@SETTINGS
@given(runs(must=["ok", "info-applied"]), st.data())
def test_a_skipped_number_is_a_gap_without_counter_figures(run, data):
    hole = data.draw(st.sampled_from([entry["number"] for entry in run.ledger][1:]))
    skip_number(run, hole)
    verdict = check(run.events, run.ledger)
    assert verdict.violations == ["gaps"]
    assert verdict.gaps == [{"first": hole, "last": hole}]


@SETTINGS
@given(runs(must=["ok"]), st.data())
def test_a_key_invoked_twice_is_an_input_error(run, data):
    key = data.draw(st.sampled_from(list(run.outcomes)))
    run.events.append({"type": "invoke", "key": key, "time": 200.0})
    assert f"{key}: invoked twice" in run.check().errors


def test_an_acknowledgement_after_the_ledger_read_is_in_flight():
    events = [{"type": "invoke", "key": "r1:c1:1", "time": 1.0},
              {"type": "ok", "key": "r1:c1:1", "time": 3.0, "number": 1}]
    assert check(events, [], 0, 0).lost
    verdict = check(events, [], 0, 0, as_of=2.0)
    assert verdict.valid and verdict.not_applied == [{"key": "r1:c1:1"}]


@SETTINGS
@given(st.sets(st.integers(0, 60)), st.integers(0, 30), st.integers(30, 60))
def test_gaps_are_exactly_the_missing_numbers_in_maximal_ranges(present, first, last):
    numbers = sorted(n for n in present if first <= n <= last)
    gaps = find_gaps(numbers, first, last)
    missing = [n for a, b in gaps for n in range(a, b + 1)]
    assert missing == [n for n in range(first, last + 1) if n not in present]
    # Maximal: a present number separates every two ranges.
    assert all(b + 1 < a for (_, b), (a, _) in zip(gaps, gaps[1:]))


# The command line, on files.

def write_journal(path, events, tail=""):
    path.write_text("".join(json.dumps(event) + "\n" for event in events) + tail)


@pytest.fixture
def files(tmp_path):
    """Two clients' journals of run r1 (one cut short by a kill), and the ledger."""
    journals = tmp_path / "journals"
    journals.mkdir()
    write_journal(journals / "c1.jsonl", [
        {"type": "invoke", "key": "r1:c1:1", "time": 1.0},
        {"type": "ok", "key": "r1:c1:1", "time": 1.1, "number": 11},
        {"type": "invoke", "key": "r2:c1:1", "time": 1.2},  # another run's: skipped
    ])
    write_journal(journals / "c2.jsonl", [
        {"type": "invoke", "key": "r1:c2:1", "time": 1.0},
        {"type": "info", "key": "r1:c2:1", "time": 2.0},
        {"type": "invoke", "key": "r1:c2:2", "time": 2.1},
    ], tail='{"type": "ok", "key": "r1:c2:2", "ti')
    ledger = {"ledger": [
        {"key": "r1:c1:1", "number": 11, "instance": "web.1", "time": 1.05},
        {"key": "r1:c2:2", "number": 12, "instance": "web.2", "time": 2.2},
    ], "counter_start": 10, "counter_end": 12}
    (tmp_path / "ledger.json").write_text(json.dumps(ledger))
    return tmp_path


def run_cli(tmp_path, *extra):
    report = tmp_path / "report.json"
    args = ["--journal", str(tmp_path / "journals/*.jsonl"), "--run", "r1", "--json", str(report), *extra]
    status = check_cli.main(args + ["--ledger-file", str(tmp_path / "ledger.json")])
    return status, json.loads(report.read_text())


def test_cli_passes_a_valid_run_and_warns_of_a_truncated_line(files, capsys):
    status, report = run_cli(files)
    assert status == 0 and report["status"] == "valid"
    assert report["counts"] == {"ok": 1, "lost": 0, "duplicated": 0, "unexpected": 0, "vanished": 0,
                                "recovered": 1, "not_applied": 1, "gaps": 0}
    assert report["source"]["events"] == 5 and report["source"]["other_runs"] == 1
    [warning] = report["source"]["warnings"]
    assert "c2.jsonl:4: truncated last line" in warning
    assert capsys.readouterr().out.rstrip().endswith("VALID")


def test_cli_fails_a_run_with_a_lost_hit(files, capsys):
    ledger = json.loads((files / "ledger.json").read_text())
    ledger["ledger"][0]["number"] = 13
    (files / "ledger.json").write_text(json.dumps(ledger))
    status, report = run_cli(files)
    assert status == 1 and report["status"] == "invalid"
    assert report["lost"][0]["key"] == "r1:c1:1"
    assert "INVALID: lost, duplicated, gaps" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["no journal", "no event for the run", "garbage line", "invoked twice"])
def test_cli_gives_no_verdict_on_bad_input(files, damage):
    journal = files / "journals/c1.jsonl"
    if damage == "no journal":
        for path in (files / "journals").iterdir():
            path.unlink()
    elif damage == "no event for the run":
        write_journal(journal, [{"type": "invoke", "key": "r2:c1:1", "time": 1.0}])
        (files / "journals/c2.jsonl").unlink()
    elif damage == "garbage line":
        journal.write_text("not json\n" + journal.read_text())
    else:
        write_journal(journal, [{"type": "invoke", "key": "r1:c2:1", "time": 1.0}])
    status, report = run_cli(files)
    assert status == 2 and report["status"] == "unknown"


def test_cli_rejects_bad_usage_and_runs_as_a_module(files):
    with pytest.raises(SystemExit) as raised:
        check_cli.main(["--journal", "x", "--run", "r1", "--ledger-file", "l.json", "--live"])
    assert raised.value.code == 2
    completed = subprocess.run(
        [sys.executable, "-m", "bench.verdict", "--journal", str(files / "nothing/*.jsonl"), "--run", "r1",
         "--ledger-file", str(files / "ledger.json")],
        cwd=ROOT, capture_output=True, text=True)
    assert completed.returncode == 2
    assert "no journal matches" in completed.stdout


def forgetful_run(hits, forget_at):
    """A run in which the server forgot everything after hit ``forget_at``: counter, key records, ledger.

    Hits after it are numbered from the run's start again, and the ledger holds only them."""
    run = SyntheticRun("r1", ["ok"] * hits, counter_start=100)
    events = list(run.history())
    for event in events:
        if "number" in event and int(event["key"].rsplit(":", 1)[1]) >= forget_at:
            event["number"] -= forget_at
    ledger = [dict(entry, number=entry["number"] - forget_at) for entry in run.ledger()
              if int(entry["key"].rsplit(":", 1)[1]) >= forget_at]
    return events, ledger, run.counter_start, run.counter_end - forget_at


@SETTINGS
@given(st.integers(2, 30), st.data())
def test_a_server_that_forgot_is_convicted_from_the_journal_alone(hits, data):
    forget_at = data.draw(st.integers(1, hits - 1))
    events, ledger, start, end = forgetful_run(hits, forget_at)
    verdict = check(events, ledger, start, end)
    assert verdict.status == "invalid"
    forgotten = {f"r1:c0:{i}" for i in range(forget_at)}
    assert forgotten <= set(keys_of(verdict.lost)), "every acknowledged hit the server forgot is lost"
    reissued = [item for item in verdict.duplicated if item["reason"].startswith("number acknowledged to")]
    assert {item["number"] for item in reissued} == set(range(101, 101 + min(forget_at, hits - forget_at)))
    backwards = [item for item in verdict.duplicated if "went backwards" in item["reason"]]
    assert backwards and backwards[0]["key"] == f"r1:c0:{forget_at}"


def test_the_journal_checks_find_nothing_in_a_clean_sequential_run():
    run = SyntheticRun("r1", ["ok", "fail", "info-applied", "ok", "pending-applied", "ok"], counter_start=5)
    verdict = check(run.history(), run.ledger(), run.counter_start, run.counter_end)
    assert verdict.status == "valid", verdict.to_dict()


def test_numbers_beyond_64_bits_and_times_beyond_floats_are_judged_as_any():
    huge = 2**64 + 5
    events = [{"type": "invoke", "key": "r1:c1:1", "time": 1.0}, {"type": "ok", "key": "r1:c1:1", "time": 10**400,
                                                                   "number": huge}]
    verdict = check(events, [{"key": "r1:c1:1", "number": huge, "instance": "web.1"}], huge - 1, huge)
    assert verdict.valid and verdict.ok == 1, verdict.to_dict()


def test_a_key_completed_before_and_after_its_invoke_is_completed_twice():
    invoke, ok = {"type": "invoke", "key": "r1:c1:1", "time": 1.0}, {"type": "ok", "key": "r1:c1:1", "time": 1.1}
    verdict = check([dict(ok, number=5), invoke, dict(ok, number=6)], [], 4, 5)
    assert "r1:c1:1: completed twice" in verdict.errors and verdict.status == "unknown"
