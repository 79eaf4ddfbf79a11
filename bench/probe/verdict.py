"""The probe's verdict, a pure function of what the run saw: per probe VALID, INVALID (by category) or NO VERDICT.

    results = [judge_probe(probe.name, writes, stopped) for probe ...]   # stopped: {instance: time it stopped}
    status = overall(results)                                             # bench.verdict.model's statuses

Each acknowledged write falls in at most one category, the first its reads
show (each read already retried for ``settle`` seconds by the run):

- ``unseen elsewhere``: another instance answered with a status the read does
  not expect while the instance that wrote it still ran: state in the process
  or on its disk;
- ``lost at restart``: the same, once the writing instance was gone (killed,
  restarted, scaled down), or on an instance started after the write;
- ``wrong content``: the expected status, but not the written content;
- ``duplicated``: a ``unique`` value two acknowledged writes share.

A probe is NO VERDICT, whatever else, when fewer than MIN_ACKED writes were
acknowledged, or no read of any write succeeded anywhere, not even on the
instance that wrote it (then the spec's read is wrong, not the app).

    >>> from bench.probe.exchange import Exchange
    >>> from bench.probe.history import Read, Write
    >>> def ex(path, who, status, t): return Exchange("GET", path, who, "http://127.0.0.1:1" + path, status, "", t)
    >>> writes = [Write("posts", "posts-1", ex("/posts", "web.1", 201, float(n)), True, "", "web.1", {},
    ...                 reads=[Read("elsewhere", ex(f"/posts/{n}", "web.2", 200 if n else 404, n + 0.1),
    ...                             "ok" if n else "status")]) for n in range(3)]
    >>> result = judge_probe("posts", writes, stopped={})
    >>> result.status, result.counts
    ('invalid', {'unseen elsewhere': 1, 'lost at restart': 0, 'duplicated': 0, 'wrong content': 0})
    >>> result.findings["unseen elsewhere"][0]["evidence"][1][:36]
    'GET /posts/0 via web.2 -> 404 at 00:'
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bench.verdict.model import EXIT_CODES, INVALID, UNKNOWN, VALID

UNSEEN, LOST, DUPLICATED, WRONG = "unseen elsewhere", "lost at restart", "duplicated", "wrong content"
CATEGORIES = (UNSEEN, LOST, DUPLICATED, WRONG)
HINTS = {
    UNSEEN: "keep sessions, records, caches and files in a backing service (Redis, a database, object storage), "
            "not in the process's memory or on its local disk; give every instance the same SECRET_KEY",
    LOST: "whatever must outlive a restart belongs in a backing service: memory and local disk are gone with the "
          "process (platforms restart every instance at least daily); sticky sessions only hide this",
    DUPLICATED: "hand out ids from the backing service (a sequence, INCR, UUIDs), not from a counter in the process",
    WRONG: "an instance answered with another record or another version of it: ids or caches kept per process",
}
MIN_ACKED = 3  # acknowledged writes a probe needs before its verdict means anything
SHOWN = 5  # findings kept per category in the report (all are counted)


@dataclass
class ProbeResult:
    """One probe's verdict: ``findings[category]`` lists evidence dicts; ``reasons`` why there is no verdict."""

    name: str
    findings: dict = field(default_factory=lambda: {name: [] for name in CATEGORIES})
    counted: dict = field(default_factory=lambda: {name: 0 for name in CATEGORIES})
    reasons: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # the probe itself failed: no verdict, whatever was found
    stats: dict = field(default_factory=dict)

    @property
    def counts(self):
        return dict(self.counted)

    @property
    def status(self):
        if self.errors:
            return UNKNOWN
        if any(self.counted.values()):
            return INVALID
        return UNKNOWN if self.reasons else VALID

    def add(self, category, evidence):
        self.counted[category] += 1
        if len(self.findings[category]) < SHOWN:
            self.findings[category].append(evidence)

    def to_dict(self):
        return {"name": self.name, "status": self.status, "counts": self.counts, "findings": self.findings,
                "reasons": self.errors + self.reasons, "stats": self.stats}


def overall(results):
    """INVALID if any probe is; else NO VERDICT if any probe has none (or there is no probe); else VALID."""
    statuses = [result.status for result in results]
    if INVALID in statuses:
        return INVALID
    return UNKNOWN if UNKNOWN in statuses or not statuses else VALID


def exit_code(results):
    return EXIT_CODES[overall(results)]


def evidence(write, read, category, note=""):
    return {"category": category, "visitor": write.visitor,
            "evidence": [write.exchange.line(), read.exchange.line() + (f" ({read.reason})" if read.reason else "")]
            + ([note] if note else []),
            "curl": [write.exchange.curl(), read.exchange.curl()]}


def classify(write, stopped):
    """(category, the read that shows it) for an acknowledged write, or None when every read was right."""
    for read in write.reads:
        if read.verdict in ("ok", "unanswered") or read.phase == "writer":
            continue
        if read.verdict == "content":
            return WRONG, read
        writer = write.writer.removeprefix("proxy -> ")
        gone = stopped.get(writer)
        if read.phase == "final" or (gone is not None and gone <= read.exchange.time):
            return LOST, read
        return UNSEEN, read
    return None


def judge_probe(name, writes, stopped, setup_failures=()):
    """The verdict of one probe from its visitors' writes; ``stopped`` maps an instance to when it stopped."""
    result = ProbeResult(name)
    acked = [write for write in writes if write.acked]
    reads = [read for write in acked for read in write.reads]
    result.stats = {"writes": len(writes), "acknowledged": len(acked), "reads": len(reads),
                    "reads right": sum(read.verdict == "ok" for read in reads)}
    for write in acked:
        found = classify(write, stopped)
        if found:
            category, read = found
            own = next((r for r in write.reads if r.phase == "writer" and r.verdict != "unanswered"), None)
            note = ""
            if own is not None:
                note = ("the writing instance itself reads it: " if own.verdict == "ok" else
                        "not even the writing instance reads it (another worker process there?): ") + own.exchange.line()
            result.add(category, evidence(write, read, category, note))
    seen = {}
    for write in acked:
        if write.unique is not None:
            if write.unique in seen:
                first = seen[write.unique]
                result.add(DUPLICATED, {"category": DUPLICATED, "visitor": write.visitor,
                                        "evidence": [first.exchange.line(), write.exchange.line(),
                                                     f"both acknowledged with the same {write.unique!r}"],
                                        "curl": [first.exchange.curl(), write.exchange.curl()]})
            else:
                seen[write.unique] = write
    if len(acked) < MIN_ACKED:
        refused = next((w for w in writes if not w.acked), None)
        why = (f"; e.g. {refused.exchange.line()} ({refused.reason})" if refused else
               f"; a setup step failed: {setup_failures[0][0].line()} ({setup_failures[0][1]})" if setup_failures
               else "")
        result.reasons.append(f"too few writes acknowledged ({len(acked)} of {len(writes)}, at least {MIN_ACKED}"
                              f" needed){why}")
    elif not any(read.verdict == "ok" for read in reads):
        sample = next((read for read in reads if read.verdict != "unanswered"), None)
        result.reasons.append("a read never succeeded, not even on the instance that wrote it: the spec's read is"
                              " wrong, not the app" + (f"; e.g. {sample.exchange.line()} ({sample.reason})"
                                                       if sample else ""))
        result.counted = {name: 0 for name in CATEGORIES}  # nothing found with a broken read can be trusted
        result.findings = {name: [] for name in CATEGORIES}
    return result
