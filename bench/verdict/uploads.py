"""The upload checker: is every acknowledged upload retrievable, with its result, from any instance, later?

    >>> def op(kind, op, key, t, **fields):
    ...     return {"type": kind, "op": op, "key": key, "time": t, **fields}
    >>> sent = {"upload": "ab12", "sum": 46, "sha256": "5e"}
    >>> history = [
    ...     op("invoke", "upload.post", "r1:u1:1", 1.0, **sent), op("ok", "upload.post", "r1:u1:1", 1.5, instance="web.1", **sent),
    ...     op("invoke", "upload.get", "r1:u1:2", 3.0, upload="ab12"),
    ...     op("fail", "upload.get", "r1:u1:2", 3.1, status=404, instance="web.2"),
    ... ]
    >>> verdict = check(history)
    >>> verdict.status, [(item["upload"], item["reason"], item["read_on"]) for item in verdict.lost]
    ('invalid', [('ab12', 'acknowledged but not found', 'web.2')])

An ``upload.post`` invoke holds the upload's id (``common.schema.upload_id`` of its
key) and the result the client worked out for what it sent (``sum``,
``sha256``); its ``ok`` holds what the server answered. An ``upload.get``
names an ``upload``; its ``ok`` holds the result read back, its ``fail`` the
status (404: not found). Categories:

- ``lost``: an acknowledged upload answered with another result than sent, read
  back with another result, or not found (once per upload, its first bad read).
- ``unexpected``: an upload found although its post was refused.
- ``recovered`` / ``not_applied``: a post with an unknown outcome, found / not found.

``ok`` counts the acknowledged uploads read back right every time, at least once.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping

from bench.verdict.checker import Verdict
from bench.verdict.ops import Op, index_ops

POST, GET = "upload.post", "upload.get"
RESULT = ("sum", "sha256")


def result_of(fields: Mapping[str, Any]) -> tuple:
    return tuple(fields.get(name) for name in RESULT)


def judge_upload(post: Op, reads: list[Op], verdict: Verdict) -> None:
    upload, sent = post["upload"], result_of(post.invoke)
    item = {"upload": upload, "key": post.key, "posted_on": post.result.get("instance")}
    found = [read for read in reads if read.status == "ok"]
    missing = [read for read in reads if read.status == "fail" and read.result.get("status") == 404]
    if post.status == "ok":
        bad = None
        if result_of(post.result) != sent:
            bad = ("acknowledged with another result than sent", post)
        for read in sorted(found + missing, key=lambda read: read.invoked):
            if bad:
                break
            if read.status == "fail":
                bad = ("acknowledged but not found", read)
            elif result_of(read.result) != sent:
                bad = ("read back with another result than sent", read)
        if bad:
            reason, op = bad
            verdict.lost.append({"reason": reason, **item, "read_on": op.result.get("instance"), "read": op.key})
        elif found:
            verdict.ok += 1
    elif post.status == "fail":
        if found:
            verdict.unexpected.append({"reason": "found although its upload was refused", **item,
                                       "read_on": found[0].result.get("instance")})
    elif found:
        verdict.recovered.append(item)
    elif missing:
        verdict.not_applied.append(item)


def check(events: Iterable[Mapping[str, Any]], as_of: float | None = None) -> Verdict:
    """Judge every upload of an upload journal by its reads."""
    ops, errors = index_ops(events, as_of)
    posts = {op["upload"]: op for op in ops.values() if op.name == POST}
    reads: dict[str, list[Op]] = defaultdict(list)
    for op in ops.values():
        if op.name == GET:
            if op["upload"] in posts:
                reads[op["upload"]].append(op)
            else:
                errors.append(f"{op.key}: a read of upload {op['upload']!r}, which was never posted")
    verdict = Verdict(errors=errors)
    for upload, post in sorted(posts.items()):
        judge_upload(post, reads[upload], verdict)
    outcomes = Counter(f"{op.name.partition('.')[2]} {op.status}" for op in ops.values())
    unread = sum(1 for upload, post in posts.items() if post.status == "ok" and not reads[upload])
    verdict.stats = {"uploads": len(posts), "reads": sum(map(len, reads.values())), "unread": unread,
                     "operations": len(ops), "outcomes": dict(sorted(outcomes.items()))}
    if not verdict.ok:
        verdict.inconclusive.append("no acknowledged upload was read back")
    return verdict
