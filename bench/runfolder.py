"""A run's folder: the names of the files a check leaves there, and the one tolerant way to read them.

    verdict = read_json(out / VERDICT_JSON)
    for event in read_jsonl(out / CHAOS): ...
    write_jsonl(out / JOURNAL, events)

Locust's plugin writes the journal, verdict and samples; the chaos engine
appends chaos.jsonl; the plugin saves the proxy's metrics; the harness writes the formation's env and logs; the
report reads them all, so a report can be rebuilt from the folder alone.
"""
import json
from pathlib import Path

VERDICT_JSON = "verdict.json"  # the whole verdict (bench.verdict.render.report_json)
VERDICT_TXT = "verdict.txt"  # the console table
LIVE = "live.json"  # the live check's latest counts, rewritten while the run goes
RUN = "run.json"  # the run's settings
CHECK = "check.json"  # scripts/check's own settings (mode, instances, duration...), when a check made the run
JOURNAL = "journal.jsonl"  # every client event, merged
CHAOS = "chaos.jsonl"  # every chaos action and follow-up
FORMATION = "formation.jsonl"  # the formation sampled once a second
AUTOSCALE = "autoscale.jsonl"  # the autoscaler's decisions (with --autoscale)
HISTORY = "locust_stats_history.csv"  # Locust's per-second statistics (--csv <folder>/locust)
CSV_PREFIX = "locust"
LOCUST_HTML = "locust.html"
LOCUST_LOG = "locust.log"
FORMATION_ENV = "formation.env"  # the env file honcho starts the formation with
FORMATION_LOG = "formation.log"
FRONT_CONF = "front.conf"  # with --front nginx or haproxy: the config generated for it
FRONT_LOG = "front.log"  # with --front nginx or haproxy: its output
FRONT_WORK = "front"  # with --front nginx: its pid file, logs and temp folders
HOSTS_JSON = "hosts.json"  # with --hosts: the layout and every process's settings
HOSTS_LOGS = "hosts"  # with --hosts: a folder of per-process output
REPORT_HTML = "report.html"
PROXY_METRICS = "proxy_metrics.json"  # the proxy's /_proxy/metrics at the run's start and end: {"start", "end"}
REDIS_DATA = "redis"  # the formation's Redis data folder
SCRATCH = "scratch"  # the web processes' scratch folders (SCRATCH_DIR), removed when the formation stops
REPLICATION = "replication.json"  # with --redis sentinel: the nodes' ports and the Sentinel settings


def read_json(path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def read_jsonl(path):
    """The JSON lines of a file; a line still being written (not JSON yet) is left out."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows


def write_json(path, data):
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row) + "\n")
