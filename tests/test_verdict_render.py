"""The verdict as a person reads it: categories in hits, items by reason, one word for hits cut at stop.

In-process, on verdicts the checkers give for small journals. Each claim has its
control: the item counts (``verdict.counts``, what the table used to show) are
the ones that mislead, so the tests show they differ from what is shown.
"""
import json

import pytest

from bench.harness.report import render_html
from bench.load.webui import tab_rows
from bench.runfolder import VERDICT_JSON
from bench.verdict import render, workloads
from bench.verdict.failover import breakdown
from bench.verdict.model import hit_counts
from bench.verdict.sources import Source

pytestmark = pytest.mark.fast


def hits(count, start=0.0):
    """``count`` keyed hits, each acknowledged the number of its position."""
    for n in range(1, count + 1):
        yield {"type": "invoke", "key": f"r:c:{n}", "time": start + n}
        yield {"type": "ok", "key": f"r:c:{n}", "time": start + n + 0.5, "number": n}


def forgetful(count):
    """Redis forgot every hit: its ledger keeps them, its counter went back to 0."""
    ledger = [{"key": f"r:c:{n}", "number": n, "instance": "web.1"} for n in range(1, count + 1)]
    return workloads.check(("hits",), list(hits(count)), ledger, 0, 0)


def console(verdict, **kwargs):
    return render.console(Source(run="r", events=1, journals=["j"]), verdict, **kwargs)


def row(text, category):
    [line] = [line for line in text.splitlines() if line.startswith(f"{category} ")]
    return line.split()


def test_a_hit_is_counted_once_and_never_both_ok_and_lost():
    verdict = forgetful(5)
    assert verdict.ok == 5 and verdict.counts["lost"] == 6  # the checker's counts: 5 ok beside 6 lost items
    assert hit_counts(verdict)["ok"] == 0 and hit_counts(verdict)["lost"] == 5
    text = console(verdict)
    assert row(text, "ok")[1] == "0" and row(text, "lost")[1] == "5"
    assert "5 acknowledged number above the final counter" in text


def test_a_hit_named_twice_in_a_category_counts_once():
    verdict = workloads.check(("hits",), list(hits(3)), [], 0, 0)  # neither applied nor counted
    assert verdict.counts["lost"] == 6 and hit_counts(verdict)["lost"] == 3
    text = console(verdict)
    assert "3 acknowledged but not applied: " in text and "3 acknowledged number above the final counter" in text


def test_hits_cut_at_stop_have_one_name_in_the_header_and_the_table():
    events = [*hits(2), {"type": "invoke", "key": "r:c:3", "time": 9.0}]  # its user was stopped mid-request
    ledger = [{"key": f"r:c:{n}", "number": n, "instance": "web.1"} for n in (1, 2)]
    text = console(workloads.check(("hits",), events, ledger, 0, 2))
    assert "3 hits (2 acknowledged, 1 cut at stop)" in text and "pending" not in text
    assert row(text, "not_applied")[1] == "1" and "cut at stop, not applied" in text


def test_gaps_are_numbers_missing_in_ranges_with_the_first_ranges():
    ledger = [{"key": f"r:c:{n}", "number": n * 3, "instance": "web.1"} for n in range(1, 6)]
    events = [{"type": "invoke", "key": f"r:c:{n}", "time": float(n)} for n in range(1, 6)] + [
        {"type": "ok", "key": f"r:c:{n}", "time": n + 0.5, "number": n * 3} for n in range(1, 6)]
    verdict = workloads.check(("hits",), events, ledger, 0, 15)
    text = console(verdict)
    assert row(text, "gaps")[1] == "10"
    assert "10 numbers missing in 5 ranges: 1-2; 4-5; 7-8; and 2 more ranges" in text


def test_sections_appear_only_where_they_apply():
    hits_only = console(forgetful(2), failovers=breakdown([], [], forgetful(2)))
    assert "vanished" not in hits_only and "failovers" not in hits_only
    session = workloads.check(("session",), [])
    assert [r["category"] for r in render.table(session)] == [
        "ok", "lost", "duplicated", "unexpected", "vanished", "recovered", "not_applied"]
    # The control: a failover that happened has its section.
    chaos = [{"action": "failover", "after": "primary-kill", "target": "redis", "began": 1.0, "elected": 2.0,
              "failover_s": 1.0}]
    assert "failovers (1):" in console(forgetful(2), failovers=breakdown(list(hits(2)), chaos, forgetful(2)))


def test_the_report_shows_hits_an_interruption_and_no_failover_table_without_a_failover(tmp_path):
    verdict = forgetful(3)
    unexplained = breakdown(list(hits(3)), [], verdict)
    assert unexplained and unexplained[0]["fault"] == "unexplained"
    interrupted = {"cause": "Locust was told to quit", "after_s": 4.2, "of_s": 60, "drain_s": 10}
    (tmp_path / VERDICT_JSON).write_text(json.dumps({"run": "r", **verdict.to_dict(), "failovers": unexplained,
                                                     "interrupted": interrupted}))
    page = render_html(tmp_path)
    assert "Failovers" not in page and "interrupted after 4.2 s of the 60 s asked" in page
    assert "acknowledged number above the final counter" in page


def test_the_tab_shows_hits_and_chaos_times_on_the_clock():
    class Chaos:
        events = [{"time": 1_700_000_000.25, "action": "failover", "target": "redis", "pid": None, "outcome": "ok",
                   "began": 1_700_000_000.0, "elected": 1_700_000_002.5}]

        def summary(self):
            return {"actions": {}, "recovery": {}}

    rows = {r["what"]: r for r in tab_rows(forgetful(2), "r", chaos=Chaos())}
    assert rows["ok"]["count"] == 0 and rows["lost"]["count"] == 2
    detail = rows["chaos event"]["detail"]
    assert "1700000000" not in detail and detail.count(":") >= 6, detail
