"""The report's timeline: load and latency under every fault drawn as a band, one swimlane per instance.

    png = timeline_png(history, formation, chaos_events, scaling)   # report.py's one call

    >>> formation = [{"time": 0, "names": ["web.1"]}, {"time": 1, "names": ["web.1", "web.2"]},
    ...              {"time": 2, "names": ["web.2"]}, {"time": 3, "names": ["web.2"]}]
    >>> chaos = [{"time": 1.5, "action": "freeze", "target": "web.2", "outcome": "ok", "duration_s": 1},
    ...          {"time": 2.5, "action": "thaw", "target": "web.2", "outcome": "ok", "after": "freeze"}]
    >>> lanes = instance_lanes(formation, chaos)
    >>> lanes["web.1"]
    [(0, 2, 'serving'), (2, 3, 'gone')]
    >>> lanes["web.2"]
    [(1, 3, 'serving'), (1.5, 2.5, 'frozen')]

Faults come from ``fault_spans`` (bench/chaos/vocabulary.py): an instant (a
kill) is a line, a lasting fault (a freeze, an outage, a bad instance) a band
over its duration, each kind in its own colour, new kinds included. A lane is
``serving`` while the instance is registered, ``gone`` after, ``frozen`` over
its freezes (in the freeze's colour, as its band above) and ``restarting``
from a kill, term or reload to its recovery.
Scale changes, the autoscaler's and those made by hand, are steps in the
bottom panel. Legends sit to the right of the plots, never over the data.
"""
import io

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG only
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

from bench.chaos.vocabulary import RECOVERED, SCALE_WEB, fault_spans  # noqa: E402

# One colour, one meaning, in every panel: a fault kind's colour is its band and its line, and a freeze's is also
# the frozen stretch of a lane; restarting has a colour no fault has. The load, latency and count lines and the
# lanes' serving and gone are black and greys, which no fault uses.
COLOURS = {"kill": "tab:red", "term": "tab:orange", "reload": "tab:blue", "rolling": "tab:cyan",
           "freeze": "tab:purple", "scale": "tab:green", "scale_web": "tab:brown", "bad": "tab:pink"}
SPARE = ["tab:olive", "teal", "navy", "lime", "maroon"]  # for kinds this module has never heard of
STATE_COLOURS = {"serving": "#90a4ae", "restarting": "#f9a825", "frozen": COLOURS["freeze"], "gone": "#e0e0e0"}
MIN_SPAN_S = 10  # a run of one sample is still drawn over seconds, not over a fraction of one
RETRY_NAME = "POST /hits (retry)"
OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "borderaxespad": 0}  # right of the plot


def colour_of(action):
    return COLOURS.get(action) or SPARE[sum(map(ord, action)) % len(SPARE)]


def instance_lanes(formation, chaos_events):
    """{instance: [(start, end, state)]}: presence from the formation samples, then the faults over it."""
    lanes, end = {}, formation[-1]["time"] if formation else 0
    present = {}
    for sample in formation:
        for name in sample.get("names", []):
            present.setdefault(name, []).append(sample["time"])
    for name, times in present.items():
        last = times[-1] if times[-1] >= end else next(s["time"] for s in formation if s["time"] > times[-1])
        lanes[name] = [(times[0], last, "serving")] + ([(last, end, "gone")] if last < end else [])
    for span in fault_spans(chaos_events):
        if span["action"] == "freeze" and span["target"] in lanes:
            lanes[span["target"]].append((span["start"], span["end"], "frozen"))
    for cause, recovered in restarts(chaos_events):
        if cause["target"] in lanes:
            lanes[cause["target"]].append((cause["time"], recovered, "restarting"))
    return lanes


def restarts(chaos_events):
    """(action event, time of its recovery) for each applied kill, term or reload that recovered."""
    waiting, found = {}, []
    for event in chaos_events:
        if event.get("action") in RECOVERED and event.get("outcome") == "ok":
            waiting.setdefault(event.get("target"), []).append(event)
        elif event.get("action") == "recovery" and waiting.get(event.get("target")):
            found.append((waiting[event["target"]].pop(0), event["time"]))
    return found


def draw_faults(axes, spans, t0):
    for span in spans:
        for axis in axes:
            if span["end"] > span["start"]:
                axis.axvspan(span["start"] - t0, span["end"] - t0, color=colour_of(span["action"]), alpha=0.15,
                             linewidth=0)
            else:
                axis.axvline(span["start"] - t0, color=colour_of(span["action"]), alpha=0.45, linewidth=1)


def draw_lanes(axis, lanes, t0):
    names = sorted(lanes)
    for row, name in enumerate(names):
        for start, end, state in lanes[name]:
            axis.broken_barh([(start - t0, max(end - start, 0.15))], (row - 0.4, 0.8), color=STATE_COLOURS[state])
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_ylim(-0.6, len(names) - 0.4)
    axis.invert_yaxis()
    axis.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c, label=s) for s, c in STATE_COLOURS.items()],
                **OUTSIDE)



def timeline_png(history, formation, chaos_events, scaling=()):
    lanes = instance_lanes(formation, chaos_events)
    fig, (load, latency, swim, procs) = plt.subplots(
        4, 1, figsize=(12.5, 9), sharex=True,
        gridspec_kw={"height_ratios": [3, 2, max(1.2, 0.35 * len(lanes)), 1.4]})
    total = history.get("Aggregated", [])
    t0 = min([row[0] for row in total] + [s["time"] for s in formation] + [e["time"] for e in chaos_events] or [0])
    if total:
        times = [row[0] - t0 for row in total]
        load.plot(times, [row[1] for row in total], label="requests/s", color="black")
        load.plot(times, [row[2] for row in total], label="failures/s", color="black", linestyle=":")
        load.plot(times, [row[5] for row in total], label="users", color="grey", linestyle="--")
        latency.plot(times, [row[3] for row in total], label="p99 ms", color="black")
        latency.plot(times, [row[4] for row in total], label="p95 ms", color="grey")
    retries = history.get(RETRY_NAME, [])
    if retries:
        load.plot([row[0] - t0 for row in retries], [row[1] for row in retries], label="retries/s", color="grey",
                  linestyle="-.")
    if formation:
        times = [s["time"] - t0 for s in formation]
        procs.step(times, [s["instances"] for s in formation], where="post", label="instances", color="black")
        procs.step(times, [s["workers"] for s in formation], where="post", label="workers", color="grey")
    draw_scaling(procs, scaling, chaos_events, formation, t0)
    spans = fault_spans(chaos_events)
    draw_faults((load, latency, procs), spans, t0)
    draw_lanes(swim, lanes, t0)
    kinds = [plt.Rectangle((0, 0), 1, 1, color=colour_of(a), alpha=0.5, label=a)
             for a in dict.fromkeys(s["action"] for s in spans)]
    load.legend(handles=load.get_legend_handles_labels()[0] + kinds, **OUTSIDE)
    for axis, label in ((load, "per second; users"), (latency, "ms"), (swim, "instances"), (procs, "count")):
        axis.set_ylabel(label)
        if axis not in (load, swim) and axis.get_legend_handles_labels()[0]:
            axis.legend(**OUTSIDE)
    low, high = procs.get_xlim()
    if high - low < MIN_SPAN_S:
        procs.set_xlim(min(low, 0), max(high, min(low, 0) + MIN_SPAN_S))
    procs.set_xlabel("seconds since start (bands: faults over their duration; lines: instant faults such as kills)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def draw_scaling(axis, scaling, chaos_events, formation, t0):
    """The count the autoscaler asked for, and each count asked by hand, as levels held until the next."""
    end = [formation[-1]["time"]] if formation else []
    for label, changes, style in (
            ("asked by autoscale", [(e["time"], e["desired"]) for e in scaling], "--"),
            ("asked by hand", [(e["time"], e["desired"]) for e in chaos_events
                               if e.get("action") == SCALE_WEB and e.get("outcome") == "ok"], ":")):
        if changes:
            times = [t - t0 for t, _ in changes] + [max([changes[-1][0]] + end) - t0]
            axis.step(times, [c for _, c in changes] + [changes[-1][1]], where="post", label=label, linestyle=style,
                      color="dimgrey")
