"""One Locust process's journal: every hit its users attempt, in the checker's event format.

    journal = Journal("r1a2b")
    key = journal.key(user=3, sequence=1)          # 'r1a2b:<tag>.3:1', the key grammar of common.schema
    journal.invoke(key)                            # before the request is sent
    journal.invoke(key, keyless=True)              # a hit sent without the key: judged by its number and the counter
    journal.complete(key, "ok", number=41)         # or "fail", or "info" when unknown
    chunk = journal.unsent()                       # what a worker streams next
    journal.invoke(key, op="session.add", visitor="v1", item="i1")   # a typed event (bench/verdict/ops.py)
    journal.complete(key, "ok", op="session.add", instance="web.2")

A user killed mid-request leaves its invoke without a completion, which the
checker reads as an unknown outcome, never as a silent gap.
"""
import threading
import time
import uuid

from common.schema import make_key


class Journal:
    def __init__(self, run_id=""):
        self.run_id = run_id
        # Made per run, not at import: --processes forks workers after the locustfile is imported.
        self.tag = uuid.uuid4().hex[:8]
        self.events = []
        self.sent = 0  # events already streamed to the master
        self._lock = threading.Lock()

    def key(self, user, sequence):
        return make_key(self.run_id, f"{self.tag}.{user}", sequence)

    def _add(self, event):
        with self._lock:
            self.events.append(event)

    def extend(self, events):
        with self._lock:
            self.events.extend(events)

    def invoke(self, key, keyless=False, **fields):
        """Before the request is sent; ``keyless``: it goes without its key, so it leaves no ledger entry."""
        self._add({"type": "invoke", "key": key, "time": time.time(), **({"keyless": True} if keyless else {}),
                   **fields})

    def complete(self, key, kind, number=None, tries=1, **fields):
        """How it ended; ``tries`` beyond the first (each a refusal or an error, retried) are noted too."""
        event = {"type": kind, "key": key, "time": time.time(), **fields}
        if number is not None:
            event["number"] = number
        if tries > 1:
            event["tries"] = tries
        self._add(event)

    def unsent(self):
        with self._lock:
            chunk, self.sent = self.events[self.sent:], len(self.events)
        return chunk
