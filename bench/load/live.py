"""What the master watches while a run goes: the formation once a second, and a live check of the journal.

    live = LiveView(run, runner)
    live.start()            # two greenlets
    live.counts, live.formation, live.peak_users
    live.stop()

Mid-run only lost, duplicated and vanished are final: a ledger entry may arrive before its
journal line, so unexpected and gaps wait for the conclusion. Each check reads
the whole journal so far, so checks are spaced out as it grows and the live
view never takes more than a fifth of the CPU the users need.
"""
import json
import logging
import time

import gevent

from bench.load.conclude import snapshot
from bench.runfolder import LIVE
from bench.verdict.model import hit_counts
from scaler.formation import live_instances

log = logging.getLogger("factor6")
LIVE_CHECK_EVERY = 3.0
SAMPLE_EVERY = 1.0
SHOWN = 10  # offending items kept for the tab


class LiveView:
    def __init__(self, run, runner):
        self.run, self.runner = run, runner
        self.formation = []  # one sample a second: instances, workers, names
        self.counts = {}  # the latest live check
        self.peak_users = 0
        self.greenlets = []

    def start(self):
        self.greenlets = [gevent.spawn(self.sample_formation), gevent.spawn(self.check_live)]

    def stop(self):
        for greenlet in self.greenlets:
            if greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)

    def sample_formation(self):
        while True:
            self.peak_users = max(self.peak_users, self.runner.user_count)
            try:
                instances = live_instances(self.run.client)
                self.formation.append({"time": time.time(), "instances": len(instances),
                                       "workers": sum(len(i.workers) for i in instances),
                                       "names": sorted(i.name for i in instances)})
            except Exception as exc:  # the formation may be mid-chaos; keep sampling
                log.debug("formation sample failed: %s", exc)
            gevent.sleep(SAMPLE_EVERY)

    def check_live(self):
        pause = LIVE_CHECK_EVERY
        while True:
            gevent.sleep(pause)
            try:
                began = time.monotonic()
                _, verdict = snapshot(self.run)
                if verdict is None:  # Redis did not answer: try again at the next turn
                    continue
                pause = max(LIVE_CHECK_EVERY, 4 * (time.monotonic() - began))
                hits = hit_counts(verdict)  # hits, not items: no hit counted both ok and lost
                self.counts = {"lost": hits["lost"], "duplicated": hits["duplicated"], "ok": hits["ok"],
                               "vanished": hits["vanished"],
                               "rps": self.runner.stats.total.current_rps, "time": time.time(),
                               "items": verdict.lost[:SHOWN] + verdict.duplicated[:SHOWN] + verdict.vanished[:SHOWN]}
                (self.run.report_dir / LIVE).write_text(json.dumps(self.counts))
            except Exception as exc:
                log.warning("live check failed: %s", exc)
