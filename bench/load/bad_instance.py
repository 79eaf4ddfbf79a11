"""One bad process among good ones: a web instance that keeps its count in memory (``HIT_MODE=local``).

    bad = BadInstances(redis_url)
    instance = bad.add()        # 'bad.1', once registered: the proxy routes to it within 0.25 s
    bad.names()                 # ['bad.1']
    bad.remove("bad.1")         # SIGTERM: it deregisters, drains and exits
    bad.stop_all()              # at test stop and quit: none outlives the run

It is started exactly as the scaler starts an instance (the Procfile's ``web``
command, a free ``PORT``, a session of its own, SIGTERM should this process
die) and registers like any instance, so it takes its share of the traffic and
the checker sees its numbers repeat the counter's: duplicates. Its name,
``bad.N``, tells it apart on the dashboard and in the registry.
"""
import os
import shlex
import time

from bench.paths import BIN, PROCFILE, ROOT
from scaler.instances import OwnedInstance, die_with_parent
from scaler.procfile import command_of
from scaler.processes import stop_tree, wait_until
from scaler.formation import live_instances
from common.redis_client import connect

PREFIX = "bad."
MODE = "local"
REGISTER_TIMEOUT = 30.0


class BadInstances:
    def __init__(self, redis_url):
        self.redis_url = redis_url
        self.running = {}  # name -> OwnedInstance
        self.count = 0

    def names(self):
        return sorted(name for name, inst in self.running.items() if inst.alive())

    def add(self):
        """Start the next ``bad.N`` and return it once it is registered (TimeoutError if it never is)."""
        self.count += 1
        instance = OwnedInstance(f"{PREFIX}{self.count}")
        env = {**os.environ, "REDIS_URL": self.redis_url, "HIT_MODE": MODE,
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        command = f"cd {shlex.quote(str(ROOT))} && {command_of(PROCFILE, 'web')}"  # its paths are the checkout's
        instance.launch(command, env, now=time.monotonic(), preexec_fn=die_with_parent())
        self.running[instance.name] = instance
        client = connect(self.redis_url)
        try:
            [registered] = wait_until(lambda: [i for i in live_instances(client) if i.name == instance.name],
                                      timeout=REGISTER_TIMEOUT, interval=0.2, what=f"{instance.name} to register",
                                      abort=lambda: self._exited(instance))
            instance.address = registered.address
        except Exception:
            self.remove(instance.name)
            raise
        finally:
            client.close()
        return instance

    @staticmethod
    def _exited(instance):
        if not instance.alive():
            raise RuntimeError(f"{instance.name} exited with {instance.exit_code()} before it registered")

    def remove(self, name):
        """Drain and stop ``name``; KeyError when it is not one of ours."""
        instance = self.running.pop(name)
        if instance.alive():
            stop_tree(instance.popen.pid)
        instance.popen.wait()

    def stop_all(self):
        for name in list(self.running):
            self.remove(name)
