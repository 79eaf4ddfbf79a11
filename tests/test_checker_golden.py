"""The checker's verdicts on faulty synthetic runs are the ones it gave before its history became columns.

Each seed makes a SyntheticRun (bench/verdict/synthetic.py) and breaks it a few
ways: the server forgot, lost or reapplied hits, numbers handed out twice, a
counter off, keyless hits, broken journal lines, tied or missing times, a run
still going. tests/checker_verdicts_f8f8cb1.json holds the digest of each
seed's verdict (``to_dict()``, with item order) and failover breakdown as commit
f8f8cb1 gave them, with per-op dicts; the checker must give them again, but
where f8f8cb1 missed a broken journal (``COMPLETED_TWICE``).

    .venv/bin/python -m tests.test_checker_golden > tests/checker_verdicts_f8f8cb1.json  # rewrite them
"""
import hashlib
import json
import random

import pytest

from bench.paths import ROOT
from bench.verdict.checker import check
from bench.verdict.failover import breakdown, counter_history
from bench.verdict.synthetic import OUTCOMES, SyntheticRun

pytestmark = pytest.mark.fast

GOLDEN = ROOT / "tests/checker_verdicts_f8f8cb1.json"
SEEDS = range(400)


def forget(rng, run):
    """The server forgot every hit from one on: later numbers start again below, and its ledger lost them."""
    cut = rng.randrange(len(run["ledger"]) + 1)
    lowered = {entry["key"] for entry in run["ledger"][cut:]}
    for event in run["events"]:
        if event.get("key") in lowered and type(event.get("number")) is int:
            event["number"] -= cut
    run["ledger"] = run["ledger"][:cut] if rng.random() < 0.5 else run["ledger"][cut:]
    run["counter_end"] -= cut


def lose_entry(rng, run):
    if run["ledger"]:
        run["ledger"].pop(rng.randrange(len(run["ledger"])))


def reapply(rng, run):
    if run["ledger"]:
        entry = dict(rng.choice(run["ledger"]), number=run["counter_end"] + 1, instance="web.9")
        run["ledger"].append(entry)
        run["counter_end"] += rng.choice([0, 1])


def share_number(rng, run):
    """A number given to two keys, in the ledger or in the journal alone."""
    numbered = [item for item in run["ledger" if rng.random() < 0.5 else "events"] if "number" in item]
    if len(numbered) > 1:
        first, second = rng.sample(numbered, 2)
        second["number"] = first["number"]


def ghost(rng, run):
    run["ledger"].append({"key": f"r1:ghost:{rng.randrange(9)}", "number": run["counter_end"] + 1, "instance": "web.1"})


def counter_off(rng, run):
    run["counter_end"] += rng.choice([-3, -1, 1, 2, 40])


def acknowledged_above(rng, run):
    acked = [event for event in run["events"] if "number" in event]
    if acked:
        rng.choice(acked)["number"] = run["counter_end"] + rng.randint(1, 5)


def keyless(rng, run):
    """Some hits sent without a key: no ledger entry, and maybe one number acknowledged to two of them."""
    invokes = [event for event in run["events"] if event.get("type") == "invoke"]
    chosen = {event["key"] for event in rng.sample(invokes, min(len(invokes), rng.randint(1, 4)))}
    for event in invokes:
        if event["key"] in chosen:
            event["keyless"] = True
    if rng.random() < 0.7:
        run["ledger"] = [entry for entry in run["ledger"] if entry["key"] not in chosen]
    acked = [event for event in run["events"] if event.get("key") in chosen and "number" in event]
    if len(acked) > 1 and rng.random() < 0.5:
        acked[1]["number"] = acked[0]["number"]


def broken_lines(rng, run):
    events = run["events"]
    damage = rng.choice(["invoke twice", "complete twice", "never invoked", "ok without number", "no key",
                         "unknown type"])
    victim = dict(rng.choice(events)) if events else {"type": "invoke", "key": "r1:c0:0", "time": 1.0}
    if damage == "invoke twice":
        events.append(dict(victim, type="invoke"))
    elif damage == "complete twice":
        events.append(dict(victim, type=rng.choice(["ok", "fail", "info"]), number=victim.get("number", 3)))
    elif damage == "never invoked":
        events.append({"type": "ok", "key": "r1:lone:1", "time": 1.7e9, "number": 5})
    elif damage == "ok without number":
        events.append(dict(victim, type="ok", number="7"))
    elif damage == "no key":
        events.append(dict(victim, key=None))
    else:
        events.append(dict(victim, type="retry"))


def coarse_times(rng, run):
    """Times tied (a coarse clock), integral, or missing."""
    step = rng.choice([0.002, 0.01, 1.0])
    for event in run["events"]:
        roll = rng.random()
        if roll < 0.05:
            event["time"] = None
        elif roll < 0.1:
            event.pop("time", None)
        elif roll < 0.6 and isinstance(event.get("time"), float):
            event["time"] = round(event["time"] / step) * step if step < 1 else int(event["time"])


FAULTS = [forget, lose_entry, reapply, share_number, ghost, counter_off, acknowledged_above, keyless,
          broken_lines, coarse_times]


def faulty_run(seed):
    """A run of the seed's hits, broken by one to four faults, its journals merged in some order."""
    rng = random.Random(seed)
    outcomes = rng.choices(sorted(OUTCOMES), k=rng.randint(1, 30))
    applied = [i for i, outcome in enumerate(outcomes) if OUTCOMES[outcome][1]]
    if rng.random() < 0.5:
        rng.shuffle(applied)
    synthetic = SyntheticRun("r1", outcomes, counter_start=rng.randint(0, 1000), clients=rng.randint(1, 4),
                             applied=applied)
    run = {"events": list(synthetic.history()), "ledger": list(synthetic.ledger()),
           "counter_start": synthetic.counter_start, "counter_end": synthetic.counter_end}
    for fault in rng.choices(FAULTS, k=rng.randint(1, 4)):
        fault(rng, run)
    if rng.random() < 0.5:
        rng.shuffle(run["events"])
    counters = [run["counter_start"], run["counter_end"]] if rng.random() < 0.8 else [None, None]
    times = [event["time"] for event in run["events"] if isinstance(event.get("time"), (int, float))]
    as_of = rng.uniform(min(times), max(times)) if times and rng.random() < 0.2 else None
    return run["events"], run["ledger"], *counters, as_of


def digest(seed):
    """The digest of the seed's verdict, of its breakdown by a failover amid its hits, and of its counter history."""
    events, ledger, counter_start, counter_end, as_of = faulty_run(seed)
    verdict = check(events, ledger, counter_start, counter_end, as_of=as_of)
    chaos = [{"action": "failover", "after": "primary-kill", "target": "redis", "began": 1.7e9 + 0.004 * k,
              "elected": 1.7e9 + 0.004 * k + 0.003, "failover_s": 0.003, "rejoined_s": None} for k in (1, 5)]
    found = {"verdict": verdict.to_dict(), "counter_history": counter_history(events)}
    if all(isinstance(event.get("time"), (int, float)) for event in events if event.get("type") == "invoke"):
        found["breakdown"] = breakdown(events, chaos, verdict)  # f8f8cb1's failed with a TypeError on the others
    return hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()


def test_the_seeds_break_runs_in_every_way():
    verdicts = [check(*run[:4], as_of=run[4]) for run in map(faulty_run, SEEDS)]
    assert {verdict.status for verdict in verdicts} == {"valid", "invalid", "unknown"}
    reasons = {item.get("reason", "") for verdict in verdicts for name in ("lost", "duplicated", "unexpected")
               for item in getattr(verdict, name)}
    for reason in ["the counter went backwards", "number acknowledged to two keyless hits",
                   "number acknowledged to 2 keys", "the counter forgot it", "applied but never attempted"]:
        assert any(reason in found for found in reasons), reason


# Where f8f8cb1 erred: a completion met before its invoke and another after it, both taken in silence (the
# first overwrote the second). Pairing hits as typed ops are paired (bench/verdict/ops.py) names it.
COMPLETED_TWICE = {327: "r1:c0:4", 368: "r1:c0:7"}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_verdict_is_the_one_given_before(seed):
    before = json.loads(GOLDEN.read_text())[str(seed)]
    if seed in COMPLETED_TWICE:
        events, ledger, counter_start, counter_end, as_of = faulty_run(seed)
        verdict = check(events, ledger, counter_start, counter_end, as_of=as_of)
        assert f"{COMPLETED_TWICE[seed]}: completed twice" in verdict.errors and digest(seed) != before
    else:
        assert digest(seed) == before


if __name__ == "__main__":
    print(json.dumps({str(seed): digest(seed) for seed in SEEDS}, indent=0))
