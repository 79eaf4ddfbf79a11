"""What a probe tells: the console verdict with evidence and fix hints, probe.json, report.html and JUnit XML.

    print(opening(args, "mount", out))
    code = write_all(args, out, results, machines, probing, formation, started)   # prints, writes; exit status

The headline is bench.verdict.render's wording (``VALID``, ``INVALID: ...``,
``NO VERDICT: ...``); each finding shows the requests as lines a person can
read and as curl commands to reproduce them, with the category's fix hint.
The files each instance wrote to its private disk are listed for every run,
VALID ones too: a cache there is allowed, but worth knowing. report.html has
the timeline (bench.harness.timeline: instances as swimlanes, every kill,
scale and restart, requests per second) and the findings; ``--junit`` writes
one test case per probe (junitparser), INVALID as a failure, NO VERDICT as an
error.
"""
from __future__ import annotations

import base64
import html
import re
import statistics
from collections import defaultdict

from bench.harness.report import table
from bench.probe.verdict import CATEGORIES, HINTS, exit_code, overall
from bench.runfolder import write_json, write_jsonl
from bench.verdict.model import INVALID, UNKNOWN, VALID
from bench.verdict.render import LABELS
from common.clock import clock

SHOWN = 2  # findings per category on the console; report.html and probe.json have up to verdict.SHOWN
FILES_SHOWN = 6  # paths per instance on the console


def opening(args, isolation, out):
    spec = args.spec
    probes = ", ".join(probe.name for probe in spec.probes) or "none: zero-config"
    front = " through the proxy" + " (sticky)" * args.proxy_sticky if args.through_proxy else ""
    return (f"factor6 probe: {args.app_dir} ({spec.app.process}: {spec.app.command}), {spec.app.instances} instances"
            f" ({isolation} isolation){front}, probes {probes}{', Redis' if spec.redis else ''},"
            f" {args.duration:g}s, seed {args.seed}; run folder {out}")


def headline(results):
    status = overall(results)
    if status == INVALID:
        return "INVALID: " + "; ".join(f"{r.name}: {', '.join(c for c in CATEGORIES if r.counted[c])}"
                                       for r in results if r.status == INVALID)
    if status == UNKNOWN:
        reasons = [reason for r in results for reason in r.errors + r.reasons] or ["nothing was probed"]
        return f"NO VERDICT: {reasons[0].splitlines()[0]}"
    return LABELS[VALID]


def files_written(machines):
    """{instance: [(path, bytes)]} for every instance that ran, in start order."""
    return {instance.name: instance.files for instance in (machines.instances if machines else [])}


def files_lines(files):
    lines = []
    for name, found in files.items():
        if not found:
            lines.append(f"  {name}: nothing")
            continue
        folders = defaultdict(list)
        for path, size in found:
            folders[path.rsplit("/", 1)[0] if "/" in path else "."].append((path, size))
        shown = "; ".join(f"{entries[0][0]} ({entries[0][1]:,} bytes)" if len(entries) == 1 else
                          f"{folder}/ ({len(entries)} files, {sum(s for _, s in entries):,} bytes)"
                          for folder, entries in list(folders.items())[:FILES_SHOWN])
        more = f"; and {len(folders) - FILES_SHOWN} more folders" if len(folders) > FILES_SHOWN else ""
        lines.append(f"  {name}: {len(found)} file{'s' * (len(found) != 1)}, {sum(s for _, s in found):,} bytes:"
                     f" {shown}{more}")
    return lines


def result_lines(result):
    stats = ", ".join(f"{value:,} {key}" if isinstance(value, int) else f"{key}: {value}"
                      for key, value in result.stats.items())
    lines = [f"probe {result.name}: {LABELS[result.status]}" + (f" ({stats})" if stats else "")]
    lines += [f"  no verdict: {reason}" for reason in result.errors + result.reasons]
    for category in CATEGORIES:
        if not result.counted[category]:
            continue
        lines.append(f"  {category}: {result.counted[category]:,}")
        for finding in result.findings[category][:SHOWN]:
            lines += [f"    {line}" for line in finding["evidence"]]
            lines += [f"    $ {command}" for command in finding["curl"]]
        lines.append(f"    fix: {HINTS[category]}")
    return lines


def console(results, files, duration_s):
    lines = [line for result in results for line in result_lines(result)]
    lines += ["files written to each instance's own disk (gone at its restart):", *files_lines(files)]
    lines += [f"{duration_s:.1f}s from start to verdict", headline(results)]
    return "\n".join(lines)


def exchanges_of(probing):
    rows = []
    for visitor in probing.visitors if probing else []:
        for write in visitor.writes:
            rows.append({"kind": "write", "probe": write.probe, "visitor": write.visitor, "acked": write.acked,
                         "reason": write.reason, **write.exchange.to_dict()})
            rows += [{"kind": f"read ({read.phase})", "probe": write.probe, "visitor": write.visitor,
                      "verdict": read.verdict, "reason": read.reason, **read.exchange.to_dict()}
                     for read in write.reads]
    return sorted(rows, key=lambda row: row["time"])


def load_history(rows):
    """bench.harness.timeline's per-second rows from the exchanges: (time, rps, failures/s, p99, p95, visitors)."""
    seconds = defaultdict(list)
    for row in rows:
        seconds[int(row["time"])].append(row)
    history = []
    for second in sorted(seconds):
        done = seconds[second]
        times = sorted(row["elapsed_ms"] for row in done if row["status"])
        bad = sum(1 for row in done if not row["status"] or row.get("verdict", "ok") not in ("ok",)
                  or row.get("acked") is False)
        p = (lambda q: times[min(len(times) - 1, int(q * len(times)))]) if times else (lambda q: 0.0)
        history.append((float(second), float(len(done)), float(bad), p(0.99), p(0.95),
                        len({row["visitor"] for row in done})))
    return {"Aggregated": history}


def timeline(rows, formation):
    from bench.harness.timeline import timeline_png  # matplotlib: loaded only to draw

    return base64.b64encode(timeline_png(load_history(rows), formation.samples if formation else [],
                                         formation.events if formation else [])).decode()


def findings_html(result):
    parts = [f"<h3 class={'good' if result.status == VALID else 'bad'}>{html.escape(result.name)}:"
             f" {LABELS[result.status]}</h3>",
             table(("writes", "acknowledged", "reads", "reads right"),
                   [[result.stats.get(key, "-") for key in ("writes", "acknowledged", "reads", "reads right")]])
             if "writes" in result.stats else ""]
    parts += [f"<p class=bad>{html.escape(reason)}</p>" for reason in result.errors + result.reasons]
    for category in CATEGORIES:
        if result.counted[category]:
            rows = [("<br>".join(map(html.escape, f["evidence"])), "<br>".join(map(html.escape, f["curl"])))
                    for f in result.findings[category]]
            parts.append(f"<h4>{category}: {result.counted[category]}</h4><p><b>fix:</b> {html.escape(HINTS[category])}"
                         "</p><table><tr><th>what happened</th><th>to reproduce</th></tr>"
                         + "".join(f"<tr><td><code>{a}</code></td><td><code>{b}</code></td></tr>" for a, b in rows)
                         + "</table>")
    return "".join(parts)


def render_html(results, files, picture, rows, opening_line):
    status = overall(results)
    files_rows = [(name, path, f"{size:,}") for name, found in files.items() for path, size in found[:50]]
    return f"""<!doctype html><html><head><meta charset=utf-8><title>factor6 probe</title>
<style>body{{font:14px sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:12px}}
.good{{color:#186a18}} .bad{{color:#a01010}} img{{max-width:100%}} code{{white-space:pre-wrap}}</style></head><body>
<h1>factor6 probe</h1><p>{html.escape(opening_line)}</p>
<h2 class={'good' if status == VALID else 'bad'}>{html.escape(headline(results))}</h2>
{''.join(findings_html(result) for result in results)}
<h2>Timeline</h2><img alt="requests per second, failures and latency; each instance a swimlane; kills, scale changes
 and the rolling restart" src="data:image/png;base64,{picture}">
<h2>Files written to each instance's own disk</h2>
<p>Gone at each restart: a cache there is allowed, state is not.</p>
{table(("instance", "path", "bytes"), files_rows) if files_rows else "<p>None.</p>"}
<h2>Requests</h2><p>{len(rows):,} requests; all of them in exchanges.jsonl.</p>
{table(("time", "kind", "visitor", "request", "verdict"), [
    (clock(r["time"]), r["kind"], r["visitor"], f"{r['method']} {r['path']} via {r['instance']} -> {r['status']}",
     r.get("verdict") or ("acknowledged" if r.get("acked") else r.get("reason"))) for r in rows[:200]])}
</body></html>
"""


def xml_text(text):
    """``text`` without the characters XML 1.0 cannot hold (an app's binary answer quoted in evidence)."""
    return re.sub("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "?", text)


def junit(path, results, app_name, files):
    from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

    suite = TestSuite(f"factor6 probe {app_name}")
    for result in results:
        case = TestCase(result.name, classname=f"factor6.probe.{app_name}")
        if result.status == INVALID:
            counts = ", ".join(f"{c} {n}" for c, n in result.counted.items() if n)
            case.result = [Failure(message=xml_text(f"INVALID: {counts}"), type_="INVALID")]
        elif result.status == UNKNOWN:
            case.result = [Error(message=xml_text(f"NO VERDICT: {(result.errors + result.reasons)[0]}"),
                                 type_="NO VERDICT")]
        case.system_out = xml_text("\n".join(result_lines(result) + files_lines(files)))
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)


def write_all(args, out, results, machines, probing, formation, started):
    """Print the verdict, write probe.json, exchanges.jsonl, report.html (and --junit): the exit status."""
    import time

    files = files_written(machines)
    duration_s = time.time() - started
    print(console(results, files, duration_s))
    rows = exchanges_of(probing)
    write_jsonl(out / "exchanges.jsonl", rows)
    write_json(out / "probe.json", {
        "status": overall(results), "exit_code": exit_code(results), "headline": headline(results),
        "probes": [result.to_dict() for result in results], "files": files, "seconds": round(duration_s, 3),
        "writes": sum(1 for row in rows if row["kind"] == "write"),
        "reads": sum(1 for row in rows if row["kind"] != "write"),
        "latency_ms_median": statistics.median([r["elapsed_ms"] for r in rows if r["status"]] or [0])})
    (out / "report.html").write_text(render_html(results, files, timeline(rows, formation), rows,
                                                 opening(args, machines.isolation if machines else "-", out)))
    if args.junit:
        junit(args.junit, results, args.app_dir.name, files)
    print(f"report: {out / 'report.html'}")
    return exit_code(results)
