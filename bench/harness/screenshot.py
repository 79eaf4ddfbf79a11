"""Makes the docs/ pictures from a real run seen by a real browser: the Formation page, the report, the tab.

    $ .venv/bin/python -m bench.harness.screenshot     # needs chromium (apt-get install chromium)

It starts a formation the way scripts/check does (3 web instances, the scaler),
runs Locust with its web UI on 127.0.0.1, starts a test with chaos through the
UI's own form endpoint, and does what a classroom demonstration does, through
the endpoints the Formation page's buttons call: kill a worker, freeze another,
scale web to 4, add a bad instance and wait for duplicates. Headless Chromium
then photographs (tests/test_dashboard.py clicks the buttons themselves):

- ``docs/formation-page.png``: the page, with the bad instance taking traffic;
- ``docs/consistency-tab.png``: Locust's Consistency tab after the stop;
- ``docs/report.png``: the run's report.html, its verdict and timeline.
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.harness import report
from bench.harness.formation import HonchoFormation
from bench.harness.model import FormationSpec
from bench.packages import Missing, installed
from bench.paths import BIN, ROOT
from bench.runfolder import CSV_PREFIX, REPORT_HTML
from scaler.processes import free_port, stop_tree, wait_until

DOCS = ROOT / "docs"
PAGE, TAB, REPORT = DOCS / "formation-page.png", DOCS / "consistency-tab.png", DOCS / "report.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def verdict_shown(ui):
    stats = requests.get(ui + "/stats/requests", timeout=5).json()
    rows = next(t["data"] for t in stats["extended_stats"] if t["key"] == "consistency")
    return any(r["what"] == "verdict" and r["count"] != "running" for r in rows)


def state(ui):
    return requests.get(ui + "/factor6/state", timeout=10).json()


def press(ui, path, body=None):
    """What a button does: its POST, which must succeed."""
    response = requests.post(ui + path, json=body or {}, timeout=90)
    response.raise_for_status()
    return response.json()


def instance(ui, name, wanted="serving"):
    return any(c["name"] == name and c["state"] == wanted for c in state(ui)["formation"]["instances"])


def demonstrate(ui):
    """The classroom's clicks, each waited for as the page would show it."""
    wait_until(lambda: instance(ui, "web.1"), timeout=60, what="web.1 serving")
    time.sleep(8)
    press(ui, "/factor6/act", {"action": "kill", "target": "web.1"})
    time.sleep(3)
    press(ui, "/factor6/act", {"action": "freeze", "target": "web.2", "seconds": 6})
    time.sleep(4)
    press(ui, "/factor6/scale", {"count": 4})
    wait_until(lambda: instance(ui, "web.4"), timeout=60, what="web.4 serving")
    time.sleep(4)
    press(ui, "/factor6/bad")
    wait_until(lambda: state(ui)["numbers"]["duplicated"] > 0, timeout=60, what="duplicates")
    time.sleep(6)


def photograph(chromium, url, path, height):
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size=1500,{height}",
                        "--virtual-time-budget=5000", f"--screenshot={path}", url],
                       check=True, capture_output=True, timeout=120)


def main():
    try:
        chromium = installed("chromium", "chromium")  # apt-get install first, where it is missing and can be
    except Missing as exc:
        sys.stderr.write(f"screenshot skipped: {exc}\n")
        sys.exit(2)

    out = Path(tempfile.mkdtemp(prefix="factor6-ui-"))
    formation, locust = HonchoFormation(FormationSpec(web=3, report_dir=out)), None
    ui = f"http://127.0.0.1:{free_port()}"
    try:
        formation.start()
        locust = subprocess.Popen(
            [BIN / "locust", "-f", ROOT / "bench/locustfile.py", "--web-host", "127.0.0.1",
             "--web-port", ui.rsplit(":", 1)[1], "--host", formation.proxy_url, "--redis-url", formation.redis_url,
             "--report-dir", out, "--csv", out / CSV_PREFIX, "--csv-full-history"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: requests.get(ui, timeout=2).ok, timeout=30, what="Locust's web UI")
        requests.post(ui + "/swarm", data={"user_count": 8, "spawn_rate": 8, "host": formation.proxy_url,
                                           "chaos_rate": "0.3", "chaos_mix": "kill,reload"}, timeout=10)
        demonstrate(ui)
        photograph(chromium, ui + "/factor6", PAGE, 1500)
        requests.post(ui + "/stop", timeout=60)
        wait_until(lambda: verdict_shown(ui), timeout=90, what="the verdict")
        photograph(chromium, ui + "/?tab=consistency", TAB, 1000)
        photograph(chromium, report.write(out).as_uri(), REPORT, 2600)
        print("\n".join(map(str, (PAGE, TAB, REPORT, out / REPORT_HTML))))
    finally:
        if locust:
            stop_tree(locust.pid)
        formation.stop()


if __name__ == "__main__":
    main()
