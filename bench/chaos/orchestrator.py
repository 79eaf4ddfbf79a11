"""Chaos through a Swarm: the vocabulary's actions made with Docker on a stack's tasks, timed by Docker's events.

    monkey = SwarmChaos(engine.client, "f6123", redis_client, rate=0.5, mix="kill,scale,redis-kill", seed=1,
                        log_path="chaos.jsonl", web=4)
    monkey.start(); ...; monkey.stop()   # the schedule, journal and summary of bench/chaos/engine.py

The schedule, its seeded streams and the journal are the chaos engine's
(``SwarmChaos`` is a ChaosMonkey whose process and backing families are one
``TaskFaults``). What each action is here:

- ``kill``: ``docker kill`` of a web task's container (SIGKILL); Swarm starts a replacement in its slot.
- ``term``: ``docker stop`` (SIGTERM, SIGKILL 10 s later); replaced the same way.
- ``reload``: ``docker kill --signal HUP``: the container's init passes it to gunicorn, which reloads.
- ``freeze``: ``docker pause``, ``docker unpause`` ``freeze_s`` later (a ``thaw`` follow-up).
- ``scale``: ``docker service scale`` of the web service to one more task, or back to ``web``.
- ``rolling``: ``docker service update --force`` of the web service: every task replaced, one at a time.
- ``redis-kill``, ``redis-restart``, ``redis-freeze``: kill, stop or pause the Valkey task's container;
  its volume keeps the append-only file for the replacement.

A web task is taken only while ``MIN_SERVING`` others are healthy, and one
Redis fault runs at a time (as bench/chaos/backing.py does); otherwise the
action is journaled as skipped, with why.

A target is named as Swarm names the task (``web.3``, ``redis.1``); its event
carries the task and container ids. Recoveries come from the engine's own event
stream: ``started_s`` to the replacement container's ``start`` and
``recovery_s`` to its ``health_status: healthy`` (its health check is
``/readyz``); ``serving_s`` adds when it was first seen in the registry the
proxy routes by (a web task's instance is its container's host name).
"""
import threading
import time

import docker
import redis

from bench.chaos.engine import ChaosMonkey
from bench.chaos.vocabulary import end_of, lasting
from common.registry import Registry

REDIS_ACTIONS = {"redis-kill": "kill", "redis-restart": "term", "redis-freeze": "freeze"}
STOP_GRACE_S = 10  # docker stop's default
# A web task is taken (killed, stopped, paused) only while this many others pass their health check: a
# replacement takes seconds here, not the fraction of one a gunicorn worker takes, so unguarded chaos at the
# check's rates would leave no capacity to check.
MIN_SERVING = 2


class Events:
    """The engine's container events of one stack, kept as they come (a thread reads Docker's stream)."""

    def __init__(self, client, stack):
        self.events, self.changed = [], threading.Condition()
        self.stream = client.events(decode=True, filters={"type": "container",
                                                          "label": f"com.docker.stack.namespace={stack}"})
        threading.Thread(target=self._read, name="docker-events", daemon=True).start()

    def _read(self):
        try:
            for event in self.stream:
                with self.changed:
                    self.events.append(event)
                    self.changed.notify_all()
        except Exception:  # the stream closed under us: stop() or the daemon going away
            pass

    def first(self, predicate, since, timeout):
        """The first event at or after ``since`` (wall clock) that ``predicate`` accepts, or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.changed:
            while time.monotonic() < deadline:
                for event in self.events[seen:]:
                    if event["timeNano"] / 1e9 >= since and predicate(event):
                        return event
                seen = len(self.events)
                self.changed.wait(0.5)
        return None

    def close(self):
        self.stream.close()


def task_of(container):
    """``(service, slot)`` of a task's container: ``("web", 3)`` from the task name ``f6123_web.3.<id>``."""
    labels = container.labels if hasattr(container, "labels") else container
    service = labels["com.docker.stack.namespace"]
    name = labels["com.docker.swarm.task.name"][len(service) + 1:]
    kind, slot, _ = name.split(".", 2)
    return kind, int(slot)


class TaskFaults:
    """The process and backing families of a SwarmChaos: actions on the stack's containers and services."""

    def __init__(self, client, stack, redis_client, record, background, stopping, choice, web, freeze_s,
                 recovery_timeout):
        self.client, self.stack, self.registry = client, stack, Registry(redis_client)
        self.record, self.background, self.stopping, self.choice = record, background, stopping, choice
        self.web, self.freeze_s, self.recovery_timeout = web, freeze_s, recovery_timeout
        self.events = Events(client, stack)
        self.busy = set()  # containers paused, or being stopped: not a target until replaced
        self.redis_down = False  # one Redis fault at a time, until its replacement is healthy or it thaws
        self.lock = threading.Lock()

    def containers(self, kind):
        """Running containers of the stack's ``kind`` service (web, redis), by slot."""
        found = self.client.containers.list(filters={
            "label": f"com.docker.swarm.service.name={self.stack}_{kind}", "status": "running"})
        return sorted(found, key=lambda c: task_of(c)[1])

    def healthy(self, kind):
        """Ids of the running containers of ``kind`` whose health check passes."""
        return {c.id for c in self.containers(kind)
                if c.attrs["State"].get("Health", {}).get("Status") == "healthy"}

    def act(self, action, target=None):
        if action in ("scale", "rolling"):
            return self.scale() if action == "scale" else self.rolling()
        kind, how = ("redis", REDIS_ACTIONS[action]) if action in REDIS_ACTIONS else ("web", action)
        if how not in ("kill", "term", "reload", "freeze"):
            return self.record(action, None, None, "skipped: not made on a Swarm")
        with self.lock:
            candidates = [c for c in self.containers(kind) if c.id not in self.busy]
        if target:
            candidates = [c for c in candidates if f"{kind}.{task_of(c)[1]}" == target]
        if not candidates:
            return self.record(action, target, None, f"skipped: no running {kind} task")
        if kind == "redis" and self.redis_down:
            return self.record(action, None, None, "skipped: the last Redis fault is still going")
        container = self.choice("rng").choice(candidates)
        if kind == "web" and how != "reload" and len(self.healthy("web") - {container.id}) < MIN_SERVING:
            return self.record(action, None, None, f"skipped: fewer than {MIN_SERVING} other web tasks healthy")
        name = f"{kind}.{task_of(container)[1]}"
        ids = {"task": container.labels.get("com.docker.swarm.task.id"), "container": container.short_id}
        began = time.time()
        if how in ("kill", "term", "freeze"):
            with self.lock:
                self.busy.add(container.id)
                self.redis_down = self.redis_down or kind == "redis"
        if how == "kill":
            container.kill()
        elif how == "reload":
            container.kill(signal="SIGHUP")
        elif how == "term":
            self.background(self.stop_container, container)
        else:
            container.pause()
            event = self.record(action, name, None, "ok", docker=f"docker pause {container.short_id}", **ids,
                                **lasting(self.freeze_s))
            self.background(self.thaw, action, name, container)
            return event
        command = {"kill": "docker kill", "term": "docker stop", "reload": "docker kill --signal HUP"}[how]
        event = self.record(action, name, None, "ok", docker=f"{command} {container.short_id}", **ids)
        if how != "reload":
            self.background(self.replaced, action, name, container, began)
        return event

    @staticmethod
    def stop_container(container):
        container.stop(timeout=STOP_GRACE_S)

    def thaw(self, action, name, container):
        self.stopping.wait(self.freeze_s)  # stop() thaws at once
        try:
            container.unpause()
            outcome = "ok"
        except docker.errors.NotFound:
            outcome = "skipped: gone meanwhile (scaled down or replaced)"
        with self.lock:
            self.busy.discard(container.id)
            self.redis_down = self.redis_down and task_of(container)[0] != "redis"
        self.record("thaw", name, None, outcome, **end_of(action), container=container.short_id)

    def replaced(self, action, name, container, began):
        """The follow-up of a task taken away: its slot's next container started, in the registry, healthy."""
        kind, slot = task_of(container)

        def in_slot(event):
            return event.get("status") == "start" and event["id"] != container.id and \
                task_of(event["Actor"]["Attributes"]) == (kind, slot)

        self.follow(action, name, began, in_slot, kind == "web")
        if kind == "redis":
            self.redis_down = False

    def follow(self, action, name, began, started, registers):
        """Times a new task: its container's start, its first sight in the registry (a web task), then its
        health check passing; each bounded by recovery_timeout."""
        start = self.events.first(started, began, self.recovery_timeout)
        if not start:
            self.record("recovery", name, None, f"error: no replacement started within {self.recovery_timeout:g}s",
                        **end_of(action))
            return
        new = start["id"]
        details = {"started_s": round(start["timeNano"] / 1e9 - began, 3), "replacement": new[:12]}
        deadline = time.monotonic() + self.recovery_timeout
        while registers and time.monotonic() < deadline:
            if new[:12] in self.registered():
                details["serving_s"] = round(time.time() - began, 3)
                break
            time.sleep(0.1)
        ready = self.events.first(lambda e: e["id"] == new and e.get("status") == "health_status: healthy", began,
                                  max(0.0, deadline - time.monotonic()))
        if ready:
            details["recovery_s"] = round(ready["timeNano"] / 1e9 - began, 3)
        outcome = "ok" if ready else f"error: not healthy within {self.recovery_timeout:g}s"
        self.record("recovery", name, None, outcome, **end_of(action), **details)

    def registered(self):
        """Names in the registry; none while Redis is away (a redis-kill of its own)."""
        try:
            return {entry.get("name") for entry in self.registry.instances()}
        except redis.RedisError:
            return set()

    def service(self, kind):
        return self.client.services.get(f"{self.stack}_{kind}")

    def scale(self):
        web = self.service("web")
        replicas = web.attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
        wanted = self.web + 1 if replicas <= self.web else self.web
        before = {c.id for c in self.containers("web")}
        began = time.time()
        web.scale(wanted)
        event = self.record("scale", f"web={wanted}", None, "ok", docker=f"docker service scale web={wanted}",
                            replicas_before=replicas, replicas=wanted)
        if wanted > replicas:
            def new(event):
                return event.get("status") == "start" and event["id"] not in before and \
                    task_of(event["Actor"]["Attributes"])[0] == "web"

            self.background(self.follow, "scale", f"web={wanted}", began, new, True)
        return event

    def rolling(self):
        web = self.service("web")
        web.force_update()
        return self.record("rolling", "web", None, "ok", docker="docker service update --force web")

    def stop(self):
        """Thaws every paused container at once; the follow-ups still running go on reading events."""
        for container in self.client.containers.list(filters={"label": f"com.docker.stack.namespace={self.stack}",
                                                              "status": "paused"}):
            container.unpause()


class SwarmChaos(ChaosMonkey):
    """The chaos engine acting through Docker on the stack ``stack`` (see the module docstring)."""

    def __init__(self, client, stack, redis_client, web, **kwargs):
        super().__init__(redis_client, **kwargs)
        self._stopped = False
        self._processes = self.backing = TaskFaults(
            client, stack, redis_client, self._record, self._in_background, self._stopping, self._choice, web,
            kwargs.get("freeze_s", 3.0), self.recovery_timeout)

    def stop(self):
        """Once, from the run's timer or the formation's stop, whichever comes first."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        super().stop()  # waits for the follow-ups, each bounded by recovery_timeout
        self._processes.events.close()
