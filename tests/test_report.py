"""report.html in-process, from a run folder written here: the per-failover table of a replicated run.

The rows come from bench.verdict.failover.breakdown itself, so the fixture has the
shape verdict.json has. The negative control: a verdict without failovers has no table.
"""
import json
import re

import pytest

from bench.harness.report import render_html
from bench.runfolder import CHAOS, VERDICT_JSON, write_jsonl
from bench.verdict.failover import breakdown
from bench.verdict.model import Verdict

pytestmark = pytest.mark.fast

JOURNAL = [{"type": "invoke", "key": "r:c:1", "time": 9.0}, {"type": "ok", "key": "r:c:1", "time": 9.5, "number": 5},
           {"type": "invoke", "key": "r:c:2", "time": 13.0}, {"type": "ok", "key": "r:c:2", "time": 13.2, "number": 5},
           {"type": "invoke", "key": "r:c:3", "time": 80.0}, {"type": "ok", "key": "r:c:3", "time": 80.1, "number": 9}]
CHAOS_EVENTS = [
    {"time": 10.0, "action": "primary-kill", "target": "redis@127.0.0.1:6390", "pid": 42, "outcome": "ok"},
    {"time": 14.0, "action": "failover", "after": "primary-kill", "outcome": "ok", "target": "redis@127.0.0.1:6390",
     "began": 10.0, "elected": 12.5, "failover_s": 2.5, "from": "127.0.0.1:6390", "to": "127.0.0.1:20401",
     "rejoined_s": 4.0, "old_primary": "slave", "second_primary": False},
    {"time": 40.2, "action": "failover", "after": "none", "outcome": "ok", "target": "redis@127.0.0.1:20401",
     "began": 40.0, "elected": 40.2, "from": "127.0.0.1:20401", "to": "127.0.0.1:20402"},
]
VERDICT = Verdict(lost=[{"reason": "acknowledged but not applied", "key": "r:c:1", "acknowledged": 5},
                        {"reason": "acknowledged but not applied", "key": "r:c:3", "acknowledged": 9}],
                  duplicated=[{"reason": "number acknowledged to 2 keys", "number": 5, "keys": ["r:c:1", "r:c:2"]}])


def run_folder(path, failovers):
    write_jsonl(path / CHAOS, CHAOS_EVENTS)
    (path / VERDICT_JSON).write_text(json.dumps({"run": "r", **VERDICT.to_dict(), "failovers": failovers}))
    return path


def rows_of(page, heading):
    """The cells of each row of the table right after ``<h2>heading</h2>``."""
    section = page.split(f"<h2>{heading}</h2>", 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in section.split("<tr>")[2:]]


def test_each_failover_is_a_row_with_its_primaries_time_without_one_and_what_it_cost(tmp_path):
    failovers = breakdown(JOURNAL, CHAOS_EVENTS, VERDICT)
    killed, unasked, unexplained = rows_of(render_html(run_folder(tmp_path, failovers)), "Failovers")
    assert killed[1:9] == ["primary-kill", "127.0.0.1:6390", "127.0.0.1:20401", "2.500", "3.200", "1 (r:c:1)",
                           "1 (5)", "0"]
    assert unasked[1:9] == ["none", "127.0.0.1:20401", "127.0.0.1:20402", "-", "40.100", "0", "0", "0"]
    assert unexplained[1] == "no failover explains these" and unexplained[6:8] == ["1", "0"]  # r:c:3, long after


def test_a_run_without_failovers_has_no_failover_table(tmp_path):
    assert "Failovers" not in render_html(run_folder(tmp_path, []))
