"""Makes the docs/ pictures from a real run seen by a real browser: the Formation page, the report, the tab.

    $ .venv/bin/python -m bench.harness.screenshot     # needs chromium (apt-get install chromium) and playwright

It starts a formation the way scripts/check does (3 web instances, the scaler),
runs Locust with its web UI on 127.0.0.1, starts a test with chaos through the
UI's own form endpoint and, in headless Chromium driven by Playwright, does what
a classroom demonstration does on the Formation page: kill a worker, freeze
another, scale web to 4, add a bad instance and watch duplicates appear. Then:

- ``docs/formation-page.png``: the page, with the bad instance taking traffic;
- ``docs/consistency-tab.png``: Locust's Consistency tab after the stop;
- ``docs/report.png``: the run's report.html, its verdict and timeline.
"""
import shutil
import sys
import tempfile
import subprocess

import requests

from bench.harness import report
from bench.harness.check import parse_args
from bench.harness.formation import Formation
from bench.paths import BIN, ROOT
from bench.runfolder import CSV_PREFIX, REPORT_HTML
from scaler.processes import free_port, stop_tree, wait_until

DOCS = ROOT / "docs"
PAGE, TAB, REPORT = DOCS / "formation-page.png", DOCS / "consistency-tab.png", DOCS / "report.png"
CHROMIUM = "/usr/bin/chromium"


def verdict_shown(ui):
    stats = requests.get(ui + "/stats/requests", timeout=5).json()
    rows = next(t["data"] for t in stats["extended_stats"] if t["key"] == "consistency")
    return any(r["what"] == "verdict" and r["count"] != "running" for r in rows)


def demonstrate(page, ui):
    """The classroom's clicks, each waited for on the page itself."""
    page.goto(ui + "/factor6")
    page.wait_for_selector('.card[data-name="web.1"][data-state="serving"]', timeout=60_000)
    page.wait_for_timeout(8_000)
    page.locator('.card[data-name="web.1"] button[data-action="kill"]').click()
    page.wait_for_timeout(3_000)
    freeze = page.locator('.card[data-name="web.2"]')
    freeze.locator("input").fill("6")
    freeze.locator('button[data-action="freeze"]').click()
    page.wait_for_timeout(4_000)
    page.locator("#scale-count").fill("4")
    page.locator("#scale").click()
    page.wait_for_selector('.card[data-name="web.4"][data-state="serving"]', timeout=60_000)
    page.wait_for_timeout(4_000)
    page.locator("#add-bad").click()
    page.wait_for_selector('.card[data-name="bad.1"][data-state="serving"]', timeout=60_000)
    page.wait_for_function("Number(document.querySelector('#duplicated').textContent.replace(/,/g, '')) > 0",
                           timeout=60_000)
    page.wait_for_timeout(6_000)
    page.screenshot(path=str(PAGE), full_page=True)


def main():
    if not shutil.which(CHROMIUM):
        sys.exit("chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    args = parse_args(["--web", "3", "--report-dir", tempfile.mkdtemp(prefix="factor6-ui-")])
    args.report_dir.mkdir(parents=True, exist_ok=True)
    formation, locust = Formation(args), None
    ui = f"http://127.0.0.1:{free_port()}"
    try:
        formation.start()
        locust = subprocess.Popen(
            [BIN / "locust", "-f", ROOT / "bench/locustfile.py", "--web-host", "127.0.0.1",
             "--web-port", ui.rsplit(":", 1)[1], "--host", formation.proxy_url, "--redis-url", formation.redis_url,
             "--report-dir", args.report_dir, "--csv", args.report_dir / CSV_PREFIX, "--csv-full-history"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: requests.get(ui, timeout=2).ok, timeout=30, what="Locust's web UI")
        requests.post(ui + "/swarm", data={"user_count": 8, "spawn_rate": 8, "host": formation.proxy_url,
                                           "chaos_rate": "0.3", "chaos_mix": "kill,reload"}, timeout=10)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            demonstrate(page, ui)
            requests.post(ui + "/stop", timeout=60)
            wait_until(lambda: verdict_shown(ui), timeout=90, what="the verdict")
            page.goto(ui + "/?tab=consistency")
            page.wait_for_timeout(3_000)
            page.screenshot(path=str(TAB))
            page.goto((report.write(args.report_dir)).as_uri())
            page.screenshot(path=str(REPORT), full_page=True)
            browser.close()
        print("\n".join(map(str, (PAGE, TAB, REPORT, args.report_dir / REPORT_HTML))))
    finally:
        if locust:
            stop_tree(locust.pid)
        formation.stop()


if __name__ == "__main__":
    main()
