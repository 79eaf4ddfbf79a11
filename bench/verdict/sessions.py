"""The session checker: per visitor, does every read of the cart hold what was acknowledged, once, and nothing else?

    >>> def op(kind, op, key, t, **fields):
    ...     return {"type": kind, "op": op, "key": key, "time": t, **fields}
    >>> history = [
    ...     op("invoke", "session.signin", "r1:v1:0", 0.0, visitor="v1"), op("ok", "session.signin", "r1:v1:0", 0.1),
    ...     op("invoke", "session.add", "r1:v1:1", 1.0, visitor="v1", item="i1"), op("ok", "session.add", "r1:v1:1", 1.1),
    ...     op("invoke", "session.read", "r1:v1:2", 2.0, visitor="v1"),
    ...     op("fail", "session.read", "r1:v1:2", 2.1, status=401, error="session unknown", instance="web.3"),
    ... ]
    >>> verdict = check(history)
    >>> verdict.status, [item["reason"] for item in verdict.vanished]
    ('invalid', ['the server no longer knew the session (401) after 1 acknowledged add(s)'])

Each visitor signs in (``session.signin``), adds items (``session.add``, one
item each, an Idempotency-Key each), reads the cart (``session.read``, whose
completion holds ``cart``) and signs out (``session.signout``); every invoke
names its ``visitor``. For each read that answered, the items whose add was
acknowledged before the read began are required. Categories:

- ``vanished``: the session disappeared: a 401 after an acknowledged sign-in,
  or an empty cart although adds were acknowledged (once per visitor).
- ``lost``: a required item missing from a cart that is not empty (once per item).
- ``duplicated``: an item in one cart more than once.
- ``unexpected``: an item in a cart that was never added, or whose add was refused.
- ``recovered`` / ``not_applied``: an add with an unknown outcome, seen in a later
  cart / never seen.

``ok`` counts the acknowledged adds that later reads held every time.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping

from bench.verdict.checker import Verdict
from bench.verdict.ops import Op, index_ops

SIGNIN, ADD, READ, SIGNOUT = "session.signin", "session.add", "session.read", "session.signout"


def judge_visitor(visitor: str, ops: list[Op], verdict: Verdict) -> None:
    """Add this visitor's offending items to ``verdict``, and its confirmed adds to ``verdict.ok``."""
    ops = sorted(ops, key=lambda op: op.invoked)
    adds = {op["item"]: op for op in ops if op.name == ADD}
    acked = [(op.completed, item) for item, op in adds.items() if op.status == "ok"]
    signed_in = any(op.name == SIGNIN and op.status == "ok" for op in ops)
    seen, missed, reported = set(), set(), set()
    vanished = False
    for op in ops:
        if op.name == SIGNIN:
            continue
        before = {item for done, item in acked if done < op.invoked}
        if op.status == "fail" and op.result.get("status") == 401 and signed_in and not vanished:
            vanished = True
            verdict.vanished.append({
                "reason": f"the server no longer knew the session (401) after {len(before)} acknowledged add(s)",
                "visitor": visitor, "op": op.name, "key": op.key, "instance": op.result.get("instance")})
        if op.name != READ or op.status != "ok":
            continue
        cart = op.result.get("cart") or []
        where = {"read": op.key, "instance": op.result.get("instance")}
        if not cart and before:
            if not vanished:
                vanished = True
                verdict.vanished.append({"reason": f"empty cart after {len(before)} acknowledged add(s)",
                                         "visitor": visitor, **where})
            missed |= before
            continue
        for item in sorted(before - set(cart) - missed):
            verdict.lost.append({"reason": "acknowledged add missing from a later cart", "visitor": visitor,
                                 "item": item, **where})
        missed |= before - set(cart)
        for item, times in sorted(Counter(cart).items()):
            add = adds.get(item)
            if times > 1 and ("dup", item) not in reported:
                reported.add(("dup", item))
                verdict.duplicated.append({"reason": f"in one cart {times} times", "visitor": visitor,
                                           "item": item, **where})
            if add is None or add.status == "fail":
                if ("odd", item) not in reported:
                    reported.add(("odd", item))
                    why = "in the cart but never added" if add is None else "in the cart although its add was refused"
                    verdict.unexpected.append({"reason": why, "visitor": visitor, "item": item, **where})
            elif add.status != "ok" and item not in seen:
                verdict.recovered.append({"visitor": visitor, "item": item, "key": add.key})
            seen.add(item)
    verdict.ok += sum(1 for _, item in acked if item in seen and item not in missed)
    for item, add in sorted(adds.items()):
        if add.status not in ("ok", "fail") and item not in seen:
            verdict.not_applied.append({"visitor": visitor, "item": item, "key": add.key})


def check(events: Iterable[Mapping[str, Any]], as_of: float | None = None) -> Verdict:
    """Judge every visitor of a session journal."""
    ops, errors = index_ops(events, as_of)
    visitors: dict[str, list[Op]] = defaultdict(list)
    for op in ops.values():
        if not isinstance(op["visitor"], str):
            errors.append(f"{op.key}: a session op without a visitor")
        elif op.name == ADD and not isinstance(op["item"], str):
            errors.append(f"{op.key}: an add without an item")
        else:
            visitors[op["visitor"]].append(op)
    verdict = Verdict(errors=errors)
    for visitor, visitor_ops in sorted(visitors.items()):
        items = [op["item"] for op in visitor_ops if op.name == ADD]
        if len(items) != len(set(items)):
            verdict.errors.append(f"visitor {visitor}: one item added under two keys (the load must name items once)")
        judge_visitor(visitor, visitor_ops, verdict)
    outcomes = Counter(f"{op.name.partition('.')[2]} {op.status}" for op in ops.values())
    verdict.stats = {"visitors": len(visitors), "operations": len(ops), "outcomes": dict(sorted(outcomes.items()))}
    if not verdict.ok:
        verdict.inconclusive.append("no cart add was acknowledged and then read back")
    return verdict
