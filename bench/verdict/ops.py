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
completions after that time. ``pair`` matches invokes with completions, for
``index_ops`` here and for the hit checker's ``index_history`` (bench/verdict/model.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

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
    ops: list[Op] = []
    positions, errors = pair(events, lambda event: ops.append(Op(event)),
                             lambda position, event: setattr(ops[position], "result", event), as_of)
    return dict(zip(positions, ops)), errors


def pair(
    events: Iterable[Mapping[str, Any]],
    invoked: Callable[[Mapping[str, Any]], Any],
    completed: Callable[[int, Mapping[str, Any]], Any],
    as_of: float | None = None,
    numbered: str | None = None,
) -> tuple[dict[str, int], list[str]]:
    """Pair each key's invoke with its completion, whatever their order across journals.

    Calls ``invoked(event)`` for the first invoke of each key, the op's
    position being the number of calls before, and ``completed(position,
    event)`` once for its completion, if it has one; a completion met before
    its invoke waits for the end. A completion of type ``numbered`` without an
    integer ``number`` is an error and no completion (the hit checker's
    ``ok``). Returns each key's position and the errors.
    """
    positions: dict[str, int] = {}
    done = bytearray()  # done[position]: the op had its completion
    early: dict[str, Mapping[str, Any]] = {}  # completions met before their invoke
    errors: list[str] = []
    for event in events:
        key, kind = event.get("key"), event.get("type")
        if type(key) is not str:
            errors.append(f"event without a string key: {dict(event)!r}")
        elif kind == "invoke":
            if key in positions:
                errors.append(f"{key}: invoked twice")
            else:
                positions[key] = len(done)
                done.append(0)
                invoked(event)
        elif kind in COMPLETIONS:
            if as_of is not None and after(event.get("time"), as_of):
                continue
            position = positions.get(key)
            if kind == numbered and type(event.get("number")) is not int:
                errors.append(f"{key}: {kind} without an integer number")
            elif (position is not None and done[position]) or key in early:
                errors.append(f"{key}: completed twice")
            elif position is not None:
                done[position] = 1
                completed(position, event)
            else:
                early[key] = event
        else:
            errors.append(f"{key}: unknown event type {kind!r}")
    for key, event in early.items():
        if key in positions:
            completed(positions[key], event)
        else:
            errors.append(f"{key}: completed but never invoked")
    return positions, errors


def after(time: Any, as_of: float) -> bool:
    """Whether a journal time is later than ``as_of``: the completion came after the ledger was read."""
    return isinstance(time, (int, float)) and time > as_of
