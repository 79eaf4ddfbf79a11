"""One Locust process's journal: every hit its users attempt, in the checker's event format.

    journal = Journal("r1a2b")
    key = journal.key(user=3, sequence=1)          # 'r1a2b:<tag>.3:1', the key grammar of web.schema
    journal.invoke(key)                            # before the request is sent
    journal.complete(key, "ok", number=41)         # or "fail", or "info" when unknown
    journal.complete(key, "ok", number=42, tries=3)  # retried twice (noted when above 1; the checker ignores it)
    chunk = journal.unsent()                       # what a worker streams next

A user killed mid-request leaves its invoke without a completion, which the
checker reads as an unknown outcome, never as a silent gap.
"""
import threading
import time
import uuid

from web.schema import make_key


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

    def invoke(self, key):
        self._add({"type": "invoke", "key": key, "time": time.time()})

    def complete(self, key, kind, number=None, tries=1):
        event = {"type": kind, "key": key, "time": time.time()}
        if number is not None:
            event["number"] = number
        if tries > 1:
            event["tries"] = tries
        self._add(event)

    def unsent(self):
        with self._lock:
            chunk, self.sent = self.events[self.sent:], len(self.events)
        return chunk
