"""Makes docs/consistency-tab.png: Locust's web UI, after a run under chaos, seen by a real browser.

    $ .venv/bin/python -m bench.harness.screenshot            # needs chromium (apt-get install chromium)

It starts a formation the way scripts/check does, runs Locust with its web UI,
starts a test with chaos through the UI's own form endpoint, stops it, waits for
the verdict, and has headless Chromium photograph ``/?tab=consistency``.
"""
import shutil
import subprocess
import sys
import tempfile
import time

import requests

from bench.harness.check import parse_args
from bench.harness.formation import Formation
from bench.paths import BIN, ROOT
from scaler.processes import free_port, stop_tree, wait_until

OUTPUT = ROOT / "docs" / "consistency-tab.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def verdict_shown(ui):
    stats = requests.get(ui + "/stats/requests", timeout=5).json()
    rows = next(t["data"] for t in stats["extended_stats"] if t["key"] == "consistency")
    return any(r["what"] == "verdict" and r["count"] != "running" for r in rows)


def main():
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium is not installed: apt-get install chromium")
    args = parse_args(["--web", "3", "--report-dir", tempfile.mkdtemp(prefix="factor6-ui-")])
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
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000",
                            "--virtual-time-budget=5000", f"--screenshot={OUTPUT}", f"{ui}/?tab=consistency"],
                           check=True, capture_output=True, timeout=120)
        print(OUTPUT)
    finally:
        if locust:
            stop_tree(locust.pid)
        formation.stop()


if __name__ == "__main__":
    main()
