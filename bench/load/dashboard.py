"""The Formation page in Locust's web UI: every process as a card, live numbers, a chart, buttons that break.

    dashboard.install(environment.web_ui, conductor)   # by plugin.install, on the master or a local runner

    GET  /factor6                 the page (static/dashboard.html); the main UI gets a link to it
    GET  /factor6/state           JSON: run, cards, numbers, verdict, series (rps, p95), faults, events
    POST /factor6/act             {"action": "kill"|"term"|"freeze"|"reload", "target": "web.2", "pid"?, "seconds"?}
    POST /factor6/scale           {"count": 5}: the scaler's count, as scripts/scale writes it
    POST /factor6/bad             add a HIT_MODE=local instance, bad.N, to the running formation
    POST /factor6/bad/remove      {"name": "bad.1"}

Every click goes through the run's chaos engine (``act(..., manual=True)``, or
``journal`` for formation changes), so it is in chaos.jsonl with ``"manual":
true`` and a seeded schedule is left as it was. Bad input is a 400 with a one-line
JSON reason: a target that is not a registered instance whose master runs
here, a pid that is not one of its workers. The page shows the formation before
any run too (the Redis of ``--redis-url``), and says so when the instances behind
the host name another formation than that Redis (bench/load/identity.py).
Actions that need load are a 409 while no test runs; a scale the scaler cannot make is a 409 with its reason. A
POST from another origin is a 403. The routes live on Locust's own app, so they
bind where its UI binds (``--web-host``; 127.0.0.1 in the docs and tests).
"""
import json
import logging
import time
from pathlib import Path
from urllib.parse import urlparse

import gevent
from flask import Response, request, send_from_directory
from redis.exceptions import RedisError

from bench.chaos.targets import local_master
from bench.chaos.vocabulary import BAD_INSTANCE, REMOVE, SCALE_WEB, end_of, fault_spans, format_event, lasting
from bench.load.bad_instance import MODE, BadInstances
from bench.load import identity
from bench.load.board import Board
from bench.verdict import render
from bench.verdict.model import hit_counts
from common.redis_client import connect
from scaler.cli import Refused, ask
from scaler.shared import Desired
from scaler.formation import live_instances

log = logging.getLogger("factor6")
STATIC = Path(__file__).parent / "static"
BUTTONS = ("kill", "term", "freeze", "reload")
MAX_FREEZE_S = 120
SAMPLE_EVERY = 1.0
SERIES_KEPT = 900  # 15 minutes of seconds
EVENTS_SHOWN = 12
LINK = ('<a href="./factor6" id="factor6-link" style="position:fixed;right:16px;bottom:16px;z-index:9999;'
        'padding:10px 16px;background:#1b5e20;color:#fff;font:600 15px sans-serif;border-radius:6px;'
        'text-decoration:none">Formation &#9654;</a>')


class Refusal(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Dashboard:
    def __init__(self, environment, conductor):
        self.env, self.conductor = environment, conductor
        self.board = Board(environment.host or "")  # made again per run: the start form may change the host
        self.bad = None
        self.series = []  # {"t", "rps", "p95"} once a second while a run goes
        self.latest, self.sampler = None, None
        self.own_client = None  # before the first run: the page's own client of --redis-url

    # -- lifecycle: test_start, test_stop, quitting -------------------------------------------

    def on_test_start(self, **_):
        self.board = Board(self.env.host or "")
        self.series, self.latest = [], None
        self.bad = BadInstances(self.conductor.options.redis_url)
        self.sampler = gevent.spawn(self.sample_while_running)

    def on_test_stop(self, **_):
        if self.sampler:
            self.sampler.kill(block=False)
        self.stop_bad()

    def stop_bad(self, **_):
        if not self.bad:
            return
        for name in self.bad.names():
            self.remove_bad(name)

    def running(self):
        """A test runs and the run's every part (its engine above all) is in place."""
        return self.sampler is not None and not self.sampler.dead and self.conductor.started

    def sample_while_running(self):
        while True:
            total = self.env.runner.stats.total
            self.series.append({"t": time.time(), "rps": round(total.current_rps, 1),
                                "p95": total.get_current_response_time_percentile(0.95) or None})
            del self.series[:-SERIES_KEPT]
            try:
                self.sample()
            except Exception as exc:  # mid-chaos, a process may vanish between two reads: sample again
                log.warning("formation sample failed: %s", exc)
            gevent.sleep(SAMPLE_EVERY)

    def sample(self):
        if self.latest and time.time() - self.latest["time"] < SAMPLE_EVERY:
            return self.latest  # several pages open, or polling between runs: one sample a second in all
        client = self.reader()
        chaos = self.conductor.chaos.events if self.conductor.chaos else []
        try:
            self.latest = self.board.sample(client, chaos, self.bad.names() if self.bad else ())
            self.latest["desired"] = Desired(client).get()
            if not self.running():  # a run's start checked it (plugin); between runs the page does
                self.latest["identity"] = identity.mismatch(self.board.proxy_url, client, self.redis_url(), 0)
        except (RedisError, OSError) as exc:
            self.latest = {"time": time.time(), "error": f"cannot read the formation: {exc}"}
        return self.latest

    def redis_url(self):
        return self.conductor.options.redis_url

    def reader(self):
        """The formation's Redis: the run's client; before the first run, the page's own (``--redis-url``)."""
        if self.conductor.client is None and self.own_client is None:
            self.own_client = connect(self.redis_url())
        return self.conductor.client or self.own_client

    # -- what the page reads ----------------------------------------------------------------

    def state(self):
        running = self.running()
        formation = self.sample()
        chaos = self.conductor.chaos.events if self.conductor.chaos else []
        return {"running": running, "run": self.conductor.run.run_id if self.conductor.run else None,
                "note": self.conductor.failed or formation.get("identity") or (
                    None if self.conductor.run else "no test has run yet: start one in Locust's UI"),
                "formation": formation, "numbers": self.numbers(), "series": self.series,
                "faults": fault_spans(chaos, now=time.time() if running else None),
                "events": [{"text": format_event(e), "manual": bool(e.get("manual"))} for e in chaos[-EVENTS_SHOWN:]]}

    def numbers(self):
        verdict = self.conductor.verdict
        if verdict is not None:
            hits = hit_counts(verdict)  # hits, each once: none both acknowledged and lost
            return {"acknowledged": hits["ok"], "lost": hits["lost"], "duplicated": hits["duplicated"],
                    "verdict": render.LABELS[verdict.status], "status": verdict.status,
                    "headline": render.headline(verdict)}
        live = (self.conductor.live.counts if self.conductor.live else None) or {}
        return {"acknowledged": live.get("ok", 0), "lost": live.get("lost", 0),
                "duplicated": live.get("duplicated", 0), "verdict": "running" if self.running() else "checking…",
                "status": None, "headline": ""}

    # -- what the buttons do ----------------------------------------------------------------

    def act(self, body):
        action = body.get("action")
        if action not in BUTTONS:
            raise Refusal(400, f"unknown action {action!r}: the buttons are {', '.join(BUTTONS)}")
        self.require_run(action)
        instance = self.instance(body.get("target"))
        pid = self.worker_pid(instance, body.get("pid"))
        seconds = self.seconds(body.get("seconds")) if action == "freeze" else None
        event = self.conductor.chaos.act(action, instance.name, manual=True, pid=pid, seconds=seconds)
        if event["outcome"] != "ok":
            raise Refusal(409, f"{action} {instance.name}: {event['outcome']}")
        return event

    def scale(self, body):
        count = body.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 64:
            raise Refusal(400, f"count must be a whole number from 1 to 64, not {count!r}")
        try:
            ask(self.reader(), count)
        except Refused as exc:
            raise Refusal(409, str(exc)) from None
        return self.journal(SCALE_WEB, None, desired=count)

    def add_bad(self, _body):
        self.require_run("adding a bad instance")
        instance = self.bad.add()
        self.follow_count(+1)
        return self.journal(BAD_INSTANCE, instance.name, pid=instance.popen.pid, hit_mode=MODE,
                            address=instance.address, **lasting(None))

    def remove_bad(self, name):
        if not self.bad or name not in self.bad.names():
            raise Refusal(400, f"{name!r} is not a bad instance of this run (they are: "
                               f"{', '.join(self.bad.names()) if self.bad else 'none'})")
        event = self.journal(REMOVE, name, **end_of(BAD_INSTANCE))  # out of the formation as of its SIGTERM: it deregisters
        self.bad.remove(name)
        self.follow_count(-1)
        return event

    def follow_count(self, change):
        """A scaler keeping a count counts the bad instance too: move the count with it, so that no good
        instance is drained to make room for it (nor started when it goes)."""
        desired = Desired(self.reader())
        if desired.get() is not None:
            desired.set(desired.get() + change)

    # -- checks -----------------------------------------------------------------------------

    def require_run(self, what):
        if not self.running() or self.conductor.chaos is None:
            raise Refusal(409, f"{what} needs load: no test is running (start one in Locust's UI)")

    def instance(self, name):
        instances = {i.name: i for i in live_instances(self.reader())}
        ours = sorted(n for n, i in instances.items() if local_master(i))
        if not isinstance(name, str) or name not in instances or name not in ours:
            raise Refusal(400, f"{name!r} is not an instance of this formation running here"
                               f" (its instances: {', '.join(ours) or 'none'})")
        return instances[name]

    @staticmethod
    def worker_pid(instance, pid):
        if pid is None:
            return None
        workers = sorted(w.pid for w in instance.workers)
        if not isinstance(pid, int) or isinstance(pid, bool) or pid not in workers:
            raise Refusal(400, f"pid {pid!r} is not a worker of {instance.name} (its workers: "
                               f"{', '.join(map(str, workers)) or 'none'})")
        return pid

    @staticmethod
    def seconds(value):
        if value is None:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= MAX_FREEZE_S:
            raise Refusal(400, f"seconds must be a number over 0 and at most {MAX_FREEZE_S}, not {value!r}")
        return float(value)

    def journal(self, action, target, **extra):
        if self.conductor.chaos is None:  # between runs: done, with no run to journal it in
            return {"action": action, "target": target, "outcome": "ok", **extra}
        return self.conductor.chaos.journal(action, target, **extra)


def reply(payload, status=200):
    """One line of JSON (Locust runs Flask in debug mode, whose jsonify would indent it)."""
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def json_body():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refusal(400, "expected a JSON object body (Content-Type: application/json)")
    return body


def install(web_ui, conductor):
    dashboard = Dashboard(web_ui.environment, conductor)
    events = web_ui.environment.events
    events.test_start.add_listener(dashboard.on_test_start)
    events.test_stop.add_listener(dashboard.on_test_stop)
    events.quitting.add_listener(dashboard.stop_bad)
    app, guard = web_ui.app, web_ui.auth_required_if_enabled

    def answer(function, *args):
        origin = request.headers.get("Origin")
        if origin and urlparse(origin).netloc != request.host:
            return reply({"error": f"refused: a request from {origin}, not from this page"}, 403)
        try:
            return reply(function(*args))
        except Refusal as exc:
            return reply({"error": exc.reason}, exc.status)
        except (RedisError, OSError, RuntimeError, TimeoutError) as exc:
            return reply({"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}, 503)

    routes = {
        ("/factor6", "GET"): lambda: send_from_directory(STATIC, "dashboard.html"),
        ("/factor6/static/<path:name>", "GET"): lambda name: send_from_directory(STATIC, name),
        ("/factor6/state", "GET"): lambda: answer(dashboard.state),
        ("/factor6/act", "POST"): lambda: answer(lambda: dashboard.act(json_body())),
        ("/factor6/scale", "POST"): lambda: answer(lambda: dashboard.scale(json_body())),
        ("/factor6/bad", "POST"): lambda: answer(dashboard.add_bad, None),
        ("/factor6/bad/remove", "POST"): lambda: answer(lambda: dashboard.remove_bad(json_body().get("name"))),
    }
    for (rule, method), view in routes.items():
        app.add_url_rule(rule, f"factor6{rule}", guard(view), methods=[method])

    @app.after_request
    def link_from_the_main_page(response):
        if request.path == "/" and response.mimetype == "text/html" and not response.direct_passthrough:
            response.set_data(response.get_data(as_text=True).replace("</body>", LINK + "</body>", 1))
        return response

    return dashboard
