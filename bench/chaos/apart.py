"""The schedule in a process of its own: ``python -m bench.chaos``, its events taken into the engine here.

    apart = ScheduleApart(adopt, redis_url=url, rate=1.0, mix={"kill": 1.0, "term": 1.0}, seed=7)
    apart.start(since=time.time())   # the child runs the schedule from then, its follow-ups, its log; adopt(event)
    apart.stop(45)                   # SIGTERM: it thaws what it froze and waits for its follow-ups

Why: in a busy process the schedule's turns come late. Embedded in Locust,
the engine is one greenlet among the users', and its follow-ups' polling (a
scan of the process table every 50 ms per recovery timed) took a sixth of
that process's samples, from the load; under 64 users it made a median 58
turns in 60 s, 55 in the worst of three runs (BENCHMARKS.md, "The chaos
monkey keeps its rate"). A process of its own wakes
on time, and leaves the load generator to the load.

The child prints each event as a JSON line (``--events json``) and stops when
its stdin closes (``--lifeline``), so it never outlives the engine that started
it, however that one ended.
"""
import json
import signal
import subprocess
import sys
import threading

from bench.paths import ROOT


class ScheduleApart:
    """``adopt(event)`` takes each of the child's events; the rest are ``python -m bench.chaos``'s settings."""

    def __init__(self, adopt, redis_url, rate, mix, seed, dry_run=False, **settings):
        self.adopt = adopt
        self.arguments = ["--redis-url", redis_url, "--rate", repr(rate), "--seed", str(seed),
                          "--mix", ",".join(f"{name}={weight:g}" for name, weight in mix.items()),
                          *(["--dry-run"] if dry_run else [])]
        for name, value in settings.items():  # freeze_s=3.0 -> --freeze-s 3.0; None: the CLI's default
            if value is not None:
                self.arguments += ["--" + name.replace("_", "-"), str(value)]
        self.child = None
        self.reader = None

    def start(self, since):
        command = [sys.executable, "-m", "bench.chaos", *self.arguments, "--since", repr(since), "--events", "json",
                   "--lifeline"]
        self.child = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self.read, name="chaos-apart", daemon=True)
        self.reader.start()

    def read(self):
        for line in self.child.stdout:
            if line.startswith("{"):  # the rest says what the child does, for a person
                self.adopt(json.loads(line))

    def stop(self, timeout):
        """Ends the child and waits for it, up to ``timeout`` seconds, then kills it (it thawed everything first)."""
        if self.child is None:
            return
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
        try:
            self.child.wait(timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        self.reader.join()
        self.child.stdin.close()
        self.child.stdout.close()
