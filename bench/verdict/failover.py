"""The verdict per failover: which lost and duplicated hits each failover of the primary caused.

    >>> journal = [{"type": "invoke", "key": "r:c:1", "time": 9.0}, {"type": "ok", "key": "r:c:1", "time": 9.5, "number": 5},
    ...            {"type": "invoke", "key": "r:c:2", "time": 13.0}, {"type": "ok", "key": "r:c:2", "time": 13.2, "number": 5}]
    >>> chaos = [{"action": "failover", "after": "primary-kill", "outcome": "ok", "target": "redis@127.0.0.1:6390",
    ...           "began": 10.0, "elected": 12.5, "failover_s": 2.5, "rejoined_s": 4.0, "second_primary": False}]
    >>> verdict = Verdict(lost=[{"reason": "acknowledged but not applied", "key": "r:c:1", "acknowledged": 5}],
    ...                   duplicated=[{"reason": "number acknowledged to 2 keys", "number": 5, "keys": ["r:c:1", "r:c:2"]}])
    >>> [row] = breakdown(journal, chaos, verdict)
    >>> row["fault"], row["failover_s"], row["served_again_s"], row["lost"], row["duplicated"], row["failed"]
    ('primary-kill', 2.5, 3.2, ['r:c:1'], [5], 0)
    >>> counter_history(journal)        # the highest number acknowledged in each second: it may go backwards
    [(9, 5), (13, 5)]

A pure function over the journal, the chaos events (``failover`` follow-ups,
bench/chaos/replicas.py) and the verdict. A lost hit belongs to the first failover
that had not yet settled when it was acknowledged (settled: the old primary rejoined,
else ``SETTLE_S`` after the election), if it was acknowledged at most ``LAG_S`` before
that failover began: a hit the old primary acknowledged just before it went and never
replicated, or one the zombie primary took after a freeze. A number handed out twice
belongs to the last failover elected before its latest acknowledgement: the new
primary, lacking it, handed it out again. A failover no fault caused (``"after": "none"``) is a row of its own.
Items no failover explains are counted under ``unexplained``.
``served_again_s``: from the fault to the first acknowledgement of a hit invoked
after the election; ``failed``: hits whose outcome was not ok (fail, or unknown
after every try) that were invoked during the failover.
"""
from bench.verdict.checker import Verdict, index_history

LAG_S = 5.0  # how long before a failover a hit may be acknowledged and still be lost by it
SETTLE_S = 5.0


def failovers_of(chaos_events):
    return sorted((e for e in chaos_events if e.get("action") == "failover" and e.get("elected")),
                  key=lambda e: e["began"])


def settled(failover):
    return failover["began"] + (failover.get("rejoined_s") or (failover.get("failover_s") or 0) + SETTLE_S)


def item_time(item, history):
    """The latest acknowledgement (else invoke) of the item's hits."""
    keys = [item["key"]] if "key" in item else item.get("keys", [])
    rows = [history.position[key] for key in keys if key in history.position]
    times = [history.acked_at[row] if history.status[row] == "ok" else history.invoked[row] for row in rows]
    return max((t for t in times if t == t), default=None)  # t != t: NaN, no time


def owner(category, when, failovers):
    """The index of the failover an item of ``category`` dated ``when`` belongs to, or None."""
    if when is None:
        return None
    if category == "lost":
        index = next((i for i, f in enumerate(failovers) if settled(f) >= when), None)
        return index if index is not None and when >= failovers[index]["began"] - LAG_S else None
    return next((i for i in reversed(range(len(failovers))) if failovers[i]["elected"] <= when), None)


def breakdown(journal, chaos_events, verdict: Verdict):
    """One row per failover: fault, times, lost keys, numbers handed out twice, failed hits."""
    history = index_history(journal)
    failovers = failovers_of(chaos_events)
    rows = [{"fault": f["after"], "target": f.get("target"), "began": f["began"], "failover_s": f.get("failover_s"),
             "served_again_s": served_again(history, f), "rejoined_s": f.get("rejoined_s"),
             "second_primary": bool(f.get("second_primary")), "lost": [], "duplicated": [],
             "failed": failed_during(history, f)} for f in failovers]
    unexplained = {"lost": 0, "duplicated": 0}
    for category in ("lost", "duplicated"):
        for item in getattr(verdict, category):
            index = owner(category, item_time(item, history), failovers)
            if index is None:
                unexplained[category] += 1
            else:
                rows[index][category].append(item.get("key") if category == "lost" else item.get("number", item.get("key")))
    for row in rows:
        row["duplicated"] = sorted(set(row["duplicated"]), key=str)
    return rows + ([{"fault": "unexplained", **unexplained}] if any(unexplained.values()) else [])


def served_again(history, failover):
    times = [history.acked_at[row] for row in history.acked if history.invoked[row] >= failover["elected"]]
    times = [t for t in times if t == t]
    return round(min(times) - failover["began"], 3) if times else None


def failed_during(history, failover):
    return sum(1 for status, invoked in zip(history.status, history.invoked)
               if status != "ok" and failover["began"] <= invoked <= settled(failover))


def counter_history(journal):
    """(second, the highest number acknowledged in it), in time order: after a lossy failover it drops."""
    history = index_history(journal)
    highest = {}
    for row in history.acked:
        at, number = history.acked_at[row], history.number[row]
        if at == at:
            highest[int(at)] = max(highest.get(int(at), number), number)
    return sorted(highest.items())
