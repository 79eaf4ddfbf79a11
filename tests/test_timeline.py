"""The report's timeline in-process: faults as bands by the lasting-fault convention, lanes per instance."""
import pytest

from bench.chaos.vocabulary import fault_spans
from bench.harness.timeline import instance_lanes, timeline_png

pytestmark = pytest.mark.fast

FORMATION = [{"time": 100.0 + t, "instances": 2, "workers": 4, "names": ["web.1", "web.2"]} for t in range(10)]
CHAOS = [
    {"time": 101.0, "action": "kill", "target": "web.1", "pid": 7, "outcome": "ok"},
    {"time": 101.4, "action": "recovery", "target": "web.1", "pid": 7, "outcome": "ok", "after": "kill"},
    {"time": 102.0, "action": "freeze", "target": "web.2", "pid": 8, "outcome": "ok", "duration_s": 3.0, "manual": True},
    {"time": 105.0, "action": "thaw", "target": "web.2", "pid": 8, "outcome": "ok", "after": "freeze", "manual": True},
    # A kind nobody here has heard of, following the convention: it shows with no change to the timeline.
    {"time": 106.0, "action": "partition", "target": "web2", "pid": None, "outcome": "ok", "duration_s": 2.0},
    {"time": 108.5, "action": "heal", "target": "web2", "pid": None, "outcome": "ok", "after": "partition"},
    {"time": 107.0, "action": "kill", "target": "web.1", "pid": 9, "outcome": "skipped: no running worker"},
]


def test_instants_and_spans_follow_the_convention():
    spans = {(s["action"], s["start"]): s for s in fault_spans(CHAOS)}
    assert spans[("kill", 101.0)]["end"] == 101.0
    assert spans[("freeze", 102.0)]["end"] == 105.0 and spans[("freeze", 102.0)]["manual"]
    assert spans[("partition", 106.0)]["end"] == 108.5
    assert ("kill", 107.0) not in spans, "a skipped action is no fault"


def test_a_fault_still_going_ends_now_and_is_open():
    [span] = fault_spans(CHAOS[2:3], now=103.5)
    assert (span["end"], span["open"]) == (103.5, True)


def test_lanes_show_restarting_and_frozen():
    lanes = instance_lanes(FORMATION, CHAOS)
    assert (101.0, 101.4, "restarting") in lanes["web.1"]
    assert (102.0, 105.0, "frozen") in lanes["web.2"]


def test_the_picture_renders_every_kind():
    png = timeline_png({}, FORMATION, CHAOS, [{"time": 100.0, "action": "start", "desired": 2}])
    assert png.startswith(b"\x89PNG")
