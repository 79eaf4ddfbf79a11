"""Makes the pictures in docs/, seen by a real browser: the Consistency tab, and the HTML report.

    $ .venv/bin/python -m bench.harness.screenshot                  # docs/consistency-tab.png
    $ .venv/bin/python -m bench.harness.screenshot report           # docs/report.png, after a 30 s check
    $ .venv/bin/python -m bench.harness.screenshot report reports/<run>   # docs/report.png of that run

Both need chromium (``apt-get install chromium``); without it they say so in
one line and exit 2. The tab: a formation started the way scripts/check does,
Locust with its web UI, a test with chaos started through the UI's own form
endpoint, stopped, and ``/?tab=consistency`` photographed once the verdict
shows. The report: scripts/check's report.html of a run folder, or of a fresh
check of 4 instances under 30 s of chaos.
"""
import shutil
import subprocess
import sys
import tempfile
import time

from pathlib import Path

import requests

from bench.harness import check
from bench.harness.formation import Formation
from bench.paths import BIN, ROOT
from bench.runfolder import REPORT_HTML
from scaler.processes import free_port, stop_tree, wait_until

OUTPUT = ROOT / "docs" / "consistency-tab.png"
REPORT_OUTPUT = ROOT / "docs" / "report.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def verdict_shown(ui):
    stats = requests.get(ui + "/stats/requests", timeout=5).json()
    rows = next(t["data"] for t in stats["extended_stats"] if t["key"] == "consistency")
    return any(r["what"] == "verdict" and r["count"] != "running" for r in rows)


def photograph(chromium, url, output, size="1400,1000"):
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                        "--virtual-time-budget=5000", f"--screenshot={output}", url],
                       check=True, capture_output=True, timeout=120)
    print(output)


def report_picture(chromium, folder=None):
    """docs/report.png: the report of ``folder``, or of a fresh check (its own exit status is not ours)."""
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="factor6-report-"))
        check.main(["--web", "4", "--duration", "30", "--chaos-rate", "1", "--seed", "7",
                    "--report-dir", str(folder)])
    page = Path(folder) / REPORT_HTML
    if not page.exists():
        sys.exit(f"no {REPORT_HTML} in {folder}")
    photograph(chromium, page.resolve().as_uri(), REPORT_OUTPUT, size="1200,1500")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    chromium = shutil.which("chromium")
    if not chromium:
        sys.stderr.write("screenshot skipped: chromium is not installed (apt-get install chromium)\n")
        sys.exit(2)
    if argv[:1] == ["report"]:
        return report_picture(chromium, argv[1] if len(argv) > 1 else None)
    tab_picture(chromium)


def tab_picture(chromium):
    args = check.parse_args(["--web", "3", "--report-dir", tempfile.mkdtemp(prefix="factor6-ui-")])
    args.report_dir.mkdir(parents=True, exist_ok=True)
    formation, locust = Formation(args), None
    ui = f"http://127.0.0.1:{free_port()}"
    try:
        formation.start()
        locust = subprocess.Popen(
            [BIN / "locust", "-f", ROOT / "bench/locustfile.py", "--web-host", "127.0.0.1",
             "--web-port", ui.rsplit(":", 1)[1], "--host", formation.proxy_url, "--redis-url", formation.redis_url,
             "--report-dir", args.report_dir],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: requests.get(ui, timeout=2).ok, timeout=30, what="Locust's web UI")
        requests.post(ui + "/swarm", data={"user_count": 8, "spawn_rate": 8, "host": formation.proxy_url,
                                           "chaos_rate": "1", "chaos_mix": "kill,term,reload,freeze"}, timeout=10)
        time.sleep(20)
        requests.post(ui + "/stop", timeout=60)
        wait_until(lambda: verdict_shown(ui), timeout=60, what="the verdict")
        photograph(chromium, f"{ui}/?tab=consistency", OUTPUT)
    finally:
        if locust:
            stop_tree(locust.pid)
        formation.stop()


if __name__ == "__main__":
    main()
