"""What each backing-service outage cost: a pure function over the journal, the chaos events and the lost hits.

    >>> chaos = [{"time": 10.0, "action": "redis-kill", "outcome": "ok", "target": "redis:6379"},
    ...          {"time": 10.4, "action": "recovery", "after": "redis-kill", "outcome": "ok",
    ...           "outage_began": 10.0, "outage_ended": 10.1, "recovery_s": 0.2}]
    >>> journal = [{"type": "invoke", "key": "r:c.1:1", "time": 9.0},
    ...            {"type": "ok", "key": "r:c.1:1", "time": 9.5, "number": 7},
    ...            {"type": "invoke", "key": "r:c.1:2", "time": 10.05},
    ...            {"type": "ok", "key": "r:c.1:2", "time": 11.2, "number": 8, "tries": 3}]
    >>> [row["action"] for row in outages(chaos)], outages(chaos)[0]["served"]
    (['redis-kill'], 10.3)
    >>> row = outage_costs(journal, chaos, lost=[{"key": "r:c.1:1", "acknowledged": 7}])[0]
    >>> row["hits_delayed"], row["tries_refused"], row["hits_failed"], row["hits_lost"]
    (1, 2, 0, 1)

An outage runs from its action (the signal) to the first hit served through the
proxy after the server answered again (``served``); without a recovery it ends
at its ``thaw``/``restore`` follow-up, else when the next one begins. Per outage:

- ``hits_delayed``: hits in flight at some moment of it (invoked before it ended,
  completed after it began); ``tries_refused``: their tries beyond the first (the
  journal's ``tries``), each a refusal (503) or an error retried with the same key;
  ``hits_failed``: those that ended unknown (``info``) after every try: client-visible.
- ``hits_lost``: acknowledged hits the checker found lost, each counted against the
  first outage that ended after it was acknowledged: the one that forgot it (an
  acknowledgement arriving just after the signal was applied by the server that died).
"""
from bisect import bisect_left

from bench.chaos.vocabulary import BACKING_ACTIONS

ENDS = ("thaw", "restore")


def outages(chaos_events):
    """The backing faults that happened, in time order: action, target, began, ended, served, recovery_s."""
    rows, open_rows = [], {}
    for event in sorted(chaos_events, key=lambda e: e.get("time", 0)):
        action, after = event.get("action"), event.get("after")
        if action in BACKING_ACTIONS and event.get("outcome") == "ok":
            row = {"action": action, "target": event.get("target"), "began": event["time"], "ended": None,
                   "served": None, "recovery_s": None}
            rows.append(row)
            open_rows[action] = row
        elif after in open_rows and (action == "recovery" or action in ENDS):
            row = open_rows[after]
            if action in ENDS:
                row["ended"] = row["ended"] or event["time"]
            elif event.get("outage_ended") is not None:
                row["ended"], row["recovery_s"] = event["outage_ended"], event.get("recovery_s")
                if row["recovery_s"] is not None:
                    row["served"] = round(event["outage_ended"] + row["recovery_s"], 3)
    for row, following in zip(rows, rows[1:] + [None]):
        row["until"] = row["served"] or row["ended"] or (following["began"] if following else None)
    return rows


def outage_costs(journal_events, chaos_events, lost=()):
    """``outages()`` rows with hits_delayed, tries_refused, hits_failed and hits_lost (see the module docstring)."""
    rows = outages(chaos_events)
    invoked, completed = {}, {}
    for event in journal_events:
        (invoked if event.get("type") == "invoke" else completed)[event.get("key")] = event
    for row in rows:
        row.update(hits_delayed=0, tries_refused=0, hits_failed=0, hits_lost=0)
    untils = [row["until"] or float("inf") for row in rows]  # one fault at a time: in order, disjoint
    for key, done in completed.items():
        start = invoked.get(key, {}).get("time")
        index = bisect_left(untils, start) if start is not None else len(rows)
        if index < len(rows) and done.get("time", 0) >= rows[index]["began"]:
            row = rows[index]
            row["hits_delayed"] += 1
            row["tries_refused"] += max(0, done.get("tries", 1) - 1)
            row["hits_failed"] += done.get("type") == "info"
    back = [row["ended"] or row["until"] or float("inf") for row in rows]
    for key in {item["key"] for item in lost if "key" in item}:  # a hit may be lost for two reasons: once
        acked = completed.get(key, {}).get("time")
        index = bisect_left(back, acked) if acked is not None else len(rows)
        if index < len(rows):
            rows[index]["hits_lost"] += 1
    return rows
