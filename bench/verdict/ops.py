"""Typed operations: a journal's invoke and completion events paired by key, for the checkers of the new workloads.

    >>> ops, errors = index_ops([
    ...     {"type": "invoke", "op": "session.add", "key": "r1:c1:1", "time": 1.0, "visitor": "v1", "item": "i1"},
    ...     {"type": "ok", "op": "session.add", "key": "r1:c1:1", "time": 1.2, "instance": "web.2"},
    ... ])
    >>> op = ops["r1:c1:1"]
    >>> op.name, op.status, op.invoked, op.completed, op["item"], op.result["instance"], errors
    ('session.add', 'ok', 1.0, 1.2, 'i1', 'web.2', [])

A typed event is a hit event (``type``, ``key``, ``time``) with an ``op`` naming
its workload and operation (``session.add``, ``upload.get``...); the invoke
holds what was asked, the completion what came back. ``as_of`` leaves out
completions after that time, as the hit checker's ``index_history`` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

PENDING = "pending"
COMPLETIONS = ("ok", "fail", "info")


@dataclass
class Op:
    """One operation: its invoke event and, once it completed, its completion event."""

    invoke: Mapping[str, Any]
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.invoke.get("op", "")

    @property
    def key(self) -> str:
        return self.invoke["key"]

    @property
    def status(self) -> str:
        return self.result.get("type", PENDING)

    @property
    def invoked(self) -> float:
        return self.invoke.get("time", 0.0)

    @property
    def completed(self) -> float | None:
        return self.result.get("time")

    def __getitem__(self, name: str) -> Any:
        return self.invoke.get(name)


def index_ops(events: Iterable[Mapping[str, Any]], as_of: float | None = None) -> tuple[dict[str, Op], list[str]]:
    """Ops by key, and what is wrong with the events (a key invoked or completed twice, a completion alone)."""
    ops: dict[str, Op] = {}
    early: dict[str, Mapping[str, Any]] = {}
    errors: list[str] = []
    for event in events:
        key, kind = event.get("key"), event.get("type")
        if type(key) is not str:
            errors.append(f"event without a string key: {dict(event)!r}")
        elif kind == "invoke":
            if key in ops:
                errors.append(f"{key}: invoked twice")
            else:
                ops[key] = Op(event)
        elif kind in COMPLETIONS:
            time = event.get("time")
            if as_of is not None and isinstance(time, (int, float)) and time > as_of:
                continue
            op = ops.get(key)
            if (op is not None and op.result) or key in early:
                errors.append(f"{key}: completed twice")
            elif op is not None:
                op.result = event
            else:
                early[key] = event
        else:
            errors.append(f"{key}: unknown event type {kind!r}")
    for key, event in early.items():
        if key in ops:
            ops[key].result = event
        else:
            errors.append(f"{key}: completed but never invoked")
    return ops, errors
