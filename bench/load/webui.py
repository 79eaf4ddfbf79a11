"""Where people look in Locust: the Consistency tab of the web UI, and the banner on Locust's --html report.

    install_tab(web_ui, conductor.rows, conductor.on_ui_stop)   # the tab polls /stats/requests, which gets our rows
    mark_html_report(html_file, verdict, run_id)                # the verdict at the top of Locust's own report

``tab_rows`` builds the tab from the live counts while a run goes and from the
final Verdict after it, with the chaos summary, the last chaos events (their
times on the clock, as every log line shows them) and the latest formation
sample. ``install_tab`` also calls ``on_stop`` when the UI's Stop is pressed.
"""
import json
import sys
import time
from pathlib import Path

from bench.chaos import FOLLOW_UPS
from bench.chaos.vocabulary import format_event
from bench.verdict import render
from bench.verdict.checker import VALID
from common.clock import clock
from common.settings import port_problem

SHOWN = 10  # offending items listed per reason in the tab
WALL_CLOCK = ("began", "elected", "outage_began")  # chaos events' fields that are time.time() values
START_WAIT_S = 30  # the run's start: its Redis, the formation's identity (bench/load/identity.py), its folder


def tab_rows(verdict=None, run_id="", live=None, chaos=None, formation=None, interrupted=None):
    rows = []
    if verdict is not None:
        rows.append({"what": "verdict", "count": render.LABELS[verdict.status], "detail": render.headline(verdict)
                     if verdict.status != VALID else f"run {run_id}"})
        if interrupted:
            rows.append({"what": "interrupted", "count": "", "detail": render.interruption(interrupted)})
        for row in render.table(verdict, shown=SHOWN):
            rows.append({"what": row["category"], "count": row["hits"],
                         "detail": " | ".join(row["items"]) or row["meaning"]})
        for reason in verdict.errors + verdict.inconclusive:
            rows.append({"what": "why no verdict", "count": "", "detail": reason})
    elif live:
        rows.append({"what": "verdict", "count": "running", "detail": "final verdict after stop"})
        for name in ("ok", "lost", "duplicated"):
            rows.append({"what": f"{name} so far", "count": live[name], "detail": ""})
        rows.append({"what": "offending", "count": len(live["items"]),
                     "detail": "; ".join(map(render.describe, live["items"]))})
    if chaos:
        summary = chaos.summary()
        for action, outcomes in summary["actions"].items():
            if action in FOLLOW_UPS:
                continue
            recovery = summary["recovery"].get(action)
            detail = f"median recovery {recovery['median_s']:.3f}s, worst {recovery['max_s']:.3f}s" if recovery else ""
            rows.append({"what": f"chaos {action}", "count": sum(outcomes.values()),
                         "detail": ", ".join(f"{k}: {v}" for k, v in outcomes.items()) + ("; " + detail if detail else "")})
        for event in chaos.events[-5:]:
            rows.append({"what": "chaos event", "count": event.get("action"), "detail": format_event(on_the_clock(event))})
    if formation:
        last = formation[-1]
        rows.append({"what": "instances", "count": last["instances"], "detail": ", ".join(last["names"])})
    return rows


def on_the_clock(event):
    """The event with its wall-clock fields (``began``, ``elected``...) as clock times, as its own time is shown.

    >>> on_the_clock({"time": 1.5, "began": 1e9, "failover_s": 2.5})["failover_s"]
    2.5
    """
    return {name: clock(value) if name in WALL_CLOCK and isinstance(value, (int, float)) else value
            for name, value in event.items()}


def install_tab(web_ui, rows, on_stop):
    web_ui.template_args.update(
        extended_tabs=[{"title": "Consistency", "key": "consistency"}],
        extended_tables=[{"key": "consistency", "structure": [
            {"key": "what", "title": "What"}, {"key": "count", "title": "Count"},
            {"key": "detail", "title": "Detail"}]}],
    )

    @web_ui.app.before_request
    def note_stop():
        from flask import request

        if request.path == "/stop":
            on_stop()

    @web_ui.app.after_request
    def add_consistency(response):
        from flask import request

        if request.path == "/stats/requests" and response.is_json:
            data = response.get_json()
            data["extended_stats"] = [{"key": "consistency", "data": rows()}]
            response.set_data(json.dumps(data))
        return response


def refuse_taken_port(web_ui):
    """Locust's web UI port taken ends Locust here with one line and exit status 2, not gevent's traceback."""
    problem = port_problem(web_ui.host, web_ui.port, "--web-port")
    if problem:
        sys.stderr.write(f"factor6: Locust's web UI {problem}\n")
        sys.exit(2)


def answer_failed_starts(web_ui, conductor):
    """Make ``POST /swarm``, which Locust answers as soon as it has spawned the start, wait for the run's start
    and answer ``success: false`` with its one-line reason when it failed (a wrong Redis, Redis away)."""
    from flask import request
    from locust.runners import STATE_RUNNING, STATE_SPAWNING
    import gevent

    @web_ui.app.before_request
    def note_start():
        if request.path == "/swarm" and request.method == "POST":
            runner = web_ui.environment.runner
            request.factor6_run = None if runner.state in (STATE_RUNNING, STATE_SPAWNING) else conductor.runs

    @web_ui.app.after_request
    def answer_start(response):
        before = getattr(request, "factor6_run", None)
        if before is None or not response.is_json or not response.get_json().get("success"):
            return response
        deadline = time.monotonic() + START_WAIT_S
        while conductor.runs == before or not (conductor.started or conductor.failed):
            if time.monotonic() > deadline:
                return response
            gevent.sleep(0.05)
        if conductor.failed:
            response.set_data(json.dumps({"success": False, "message": conductor.failed,
                                          "host": web_ui.environment.host}))
        return response


def mark_html_report(html_file, verdict, run_id):
    """Put the verdict at the top of Locust's own --html report, which is written before quitting."""
    if not (html_file and verdict is not None and Path(html_file).exists()):
        return
    counts = ", ".join(f"{row['category']}: {row['hits']:,}" for row in render.table(verdict))
    colour = {"valid": "#d4f7d4", "invalid": "#f7d4d4"}.get(verdict.status, "#f7ecd4")
    banner = (f'<div style="font:16px sans-serif;padding:12px;background:{colour}">'
              f'<b>factor6 consistency: {render.headline(verdict)}</b> (run {run_id}; {counts})'
              f' &mdash; details in verdict.json and report.html</div>')
    text = Path(html_file).read_text(encoding="utf-8")
    Path(html_file).write_text(text.replace("<body>", "<body>" + banner, 1), encoding="utf-8")
