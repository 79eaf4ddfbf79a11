"""The base of factor6's Locust users: each one numbered in its process, its hits journaled and retried.

    class CartUser(JournaledUser):
        workload = "session"                      # the checker its events go to (bench/verdict/workloads.py)

        @task
        def add(self):
            key = self.next_key()                 # '<run>:<process>.<user>:<seq>', fresh per call
            self.journal.invoke(key, op="session.add", item="i1")

Subclasses set ``workload`` and may widen ``on_start`` (calling the base's
first). ``tries`` is how many tries a request gets: None for ``--hit-tries``,
1 for one that must not be sent twice. The class is abstract: Locust runs
only its subclasses.
"""
import itertools

from locust import FastHttpUser

from bench.load.tries import retrying


class JournaledUser(FastHttpUser):
    abstract = True
    workload = ""
    tries = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._user_numbers = itertools.count(1)  # each class numbers its own users

    def on_start(self):
        self.sequence = itertools.count(1)
        self.number = next(self._user_numbers)
        self.retrying = retrying(self.environment.parsed_options, tries=self.tries)

    @property
    def journal(self):
        """The journal this process's users write (bench/load/plugin.py's, per run)."""
        return self.environment.factor6.journal

    def next_key(self):
        return self.journal.key(self.number, next(self.sequence))
