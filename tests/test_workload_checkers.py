"""The session and upload checkers, and their composition, on synthetic histories: each rule, seen to fire."""
import pytest

from bench.verdict import render, sessions, uploads, workloads
from bench.verdict.sources import Source

pytestmark = pytest.mark.fast


class History(list):
    """Events with their times in the order written."""

    def op(self, name, key, kind, asked=None, **result):
        self.append({"type": "invoke", "op": name, "key": key, "time": len(self), **(asked or {})})
        if kind:
            self.append({"type": kind, "op": name, "key": key, "time": len(self), **result})
        return self


def visit(*steps, visitor="v1"):
    """``("add", "i1", "ok")``, ``("read", ["i1"])``, ``("read", 401)`` ... after an acknowledged sign-in."""
    history = History().op("session.signin", "k0", "ok", {"visitor": visitor})
    for n, step in enumerate(steps, 1):
        if step[0] == "add":
            history.op("session.add", f"k{n}", step[2], {"visitor": visitor, "item": step[1]},
                       **({"status": 400, "error": "refused"} if step[2] == "fail" else {}))
        elif step[1] == 401:
            history.op("session.read", f"k{n}", "fail", {"visitor": visitor}, status=401, instance="web.2")
        else:
            history.op("session.read", f"k{n}", "ok", {"visitor": visitor}, cart=step[1], instance="web.1")
    return history


def test_a_visitor_whose_reads_hold_every_acknowledged_item_once_is_valid():
    verdict = sessions.check(visit(("add", "i1", "ok"), ("read", ["i1"]), ("add", "i2", "ok"), ("read", ["i1", "i2"])))
    assert verdict.status == "valid" and verdict.ok == 2 and verdict.stats["visitors"] == 1


@pytest.mark.parametrize("steps, category, reason", [
    ((("add", "i1", "ok"), ("add", "i2", "ok"), ("read", ["i2"])), "lost", "acknowledged add missing from a later cart"),
    ((("add", "i1", "ok"), ("read", ["i1", "i1"])), "duplicated", "in one cart 2 times"),
    ((("add", "i1", "ok"), ("read", ["i1", "x"])), "unexpected", "in the cart but never added"),
    ((("add", "i1", "fail"), ("add", "i2", "ok"), ("read", ["i1", "i2"])), "unexpected",
     "in the cart although its add was refused"),
    ((("add", "i1", "ok"), ("read", [])), "vanished", "empty cart after 1 acknowledged add(s)"),
    ((("add", "i1", "ok"), ("read", 401)), "vanished", "the server no longer knew the session (401) after 1"),
])
def test_each_session_violation_is_named_with_its_visitor(steps, category, reason):
    verdict = sessions.check(visit(*steps))
    assert verdict.status == "invalid" and verdict.violations == [category]
    item = getattr(verdict, category)[0]
    assert item["visitor"] == "v1" and item["reason"].startswith(reason)


def test_an_add_with_an_unknown_outcome_is_recovered_when_seen_and_not_applied_when_not():
    seen = sessions.check(visit(("add", "i1", "info"), ("add", "i2", "ok"), ("read", ["i1", "i2"])))
    assert seen.status == "valid" and [r["item"] for r in seen.recovered] == ["i1"]
    unseen = sessions.check(visit(("add", "i1", None), ("add", "i2", "ok"), ("read", ["i2"])))
    assert unseen.status == "valid" and [r["item"] for r in unseen.not_applied] == ["i1"]


def test_an_add_still_in_flight_when_the_read_began_is_not_required():
    history = visit(("add", "i1", "ok"))
    history.append({"type": "invoke", "op": "session.add", "key": "k9", "time": 10, "visitor": "v1", "item": "i2"})
    history.op("session.read", "k10", "ok", {"visitor": "v1"}, cart=["i1"])
    history.append({"type": "ok", "op": "session.add", "key": "k9", "time": 20})
    assert sessions.check(history).status == "valid"


def test_a_401_before_any_sign_in_was_acknowledged_is_not_a_vanished_session():
    history = History().op("session.signin", "k0", "info", {"visitor": "v1"})
    history.op("session.read", "k1", "fail", {"visitor": "v1"}, status=401)
    verdict = sessions.check(history)
    assert verdict.status == "unknown" and not verdict.vanished and verdict.inconclusive


def upload_history(post_kind, *reads, sent=(46, "5e"), answered=None):
    history = History().op("upload.post", "p1", post_kind, {"upload": "u1", "sum": sent[0], "sha256": sent[1]},
                           **dict(zip(("sum", "sha256"), answered or sent)), instance="web.1")
    for n, read in enumerate(reads):
        if read == 404:
            history.op("upload.get", f"g{n}", "fail", {"upload": "u1"}, status=404, instance="web.2")
        else:
            history.op("upload.get", f"g{n}", "ok", {"upload": "u1"}, **dict(zip(("sum", "sha256"), read)))
    return history


@pytest.mark.parametrize("history, status, category, reason", [
    (upload_history("ok", (46, "5e"), (46, "5e")), "valid", None, None),
    (upload_history("ok", (46, "5e"), 404), "invalid", "lost", "acknowledged but not found"),
    (upload_history("ok", (47, "5e")), "invalid", "lost", "read back with another result than sent"),
    (upload_history("ok", (46, "5e"), answered=(1, "00")), "invalid", "lost", "acknowledged with another result"),
    (upload_history("fail", (46, "5e")), "invalid", "unexpected", "found although its upload was refused"),
    (upload_history("info", (46, "5e")), "unknown", "recovered", None),
    (upload_history("info", 404), "unknown", "not_applied", None),
])
def test_each_upload_outcome(history, status, category, reason):
    verdict = uploads.check(history)
    assert verdict.status == status
    if category:
        item = getattr(verdict, category)[0]
        assert item["upload"] == "u1" and item.get("reason", "").startswith(reason or "")


def test_a_read_of_an_upload_never_posted_is_broken_input():
    history = History().op("upload.get", "g1", "ok", {"upload": "nope"}, sum=1, sha256="0")
    assert uploads.check(history).errors == ["g1: a read of upload 'nope', which was never posted"]


def test_composed_workloads_keep_each_part_and_name_the_one_that_broke():
    hits = [{"type": "invoke", "key": "r:c:1", "time": 1}, {"type": "ok", "key": "r:c:1", "time": 2, "number": 1}]
    ledger = [{"key": "r:c:1", "number": 1, "instance": "web.1"}]
    broken = visit(("add", "i1", "ok"), ("read", 401))
    verdict = workloads.check(("hits", "session"), hits + broken, ledger, 0, 1)
    assert verdict.status == "invalid" and verdict.ok == 1
    assert {name: part["status"] for name, part in verdict.stats["workloads"].items()} == {
        "hits": "valid", "session": "invalid"}
    assert verdict.vanished[0]["workload"] == "session" and verdict.stats["counter_end"] == 1
    assert render.headline(verdict) == "INVALID: session: vanished"
    assert "session: INVALID; 1 visitors" in render.console(Source(run="r"), verdict)


def test_events_of_a_workload_not_asked_for_make_the_verdict_unknown():
    verdict = workloads.check(("hits",), visit(("add", "i1", "ok"), ("read", ["i1"])))
    assert verdict.status == "unknown" and "of workload 'session', which was not asked for" in verdict.errors[0]


def test_a_hits_only_verdict_reads_as_before():
    hits = [{"type": "invoke", "key": "r:c:1", "time": 1}, {"type": "ok", "key": "r:c:1", "time": 2, "number": 1}]
    verdict = workloads.check(("hits",), hits, [{"key": "r:c:1", "number": 1, "instance": "w"}], 0, 1)
    assert verdict.status == "valid" and render.headline(verdict) == "VALID"
    assert render.console(Source(run="r"), verdict).splitlines()[1].startswith("1 hit (1 acknowledged), 1 applications")
