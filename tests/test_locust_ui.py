"""The Consistency tab in Locust's web UI, driven through the UI's own HTTP API, with chaos from the UI form."""
import requests

from tests.procs import ROOT, VENV_BIN, free_port, process_env, wait_until


def consistency_rows(ui):
    stats = requests.get(ui + "/stats/requests", timeout=5).json()
    [tab] = [t for t in stats["extended_stats"] if t["key"] == "consistency"]
    return {row["what"]: row for row in tab["data"]}


def test_tab_shows_live_counts_then_the_final_verdict_and_chaos(procs, redis_url, tmp_path):
    for i in (1, 2):
        procs.web(redis_url, name=f"web.{i}")
    proxy = procs.proxy(redis_url)
    ui_port = free_port()
    locust = procs.spawn(
        [str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/locustfile.py"), "--web-host", "127.0.0.1",
         "--web-port", str(ui_port), "--host", proxy.url, "--redis-url", redis_url,
         "--report-dir", str(tmp_path / "report")],
        process_env(), tmp_path / "locust.log")
    ui = f"http://127.0.0.1:{ui_port}"
    wait_until(lambda: requests.get(ui + "/", timeout=2).ok, timeout=30, what="Locust's web UI")
    page = requests.get(ui + "/").text
    assert '"title": "Consistency"' in page, "the tab is declared in the page's template arguments"

    # The chaos rate is a custom option of the UI's start form.
    started = requests.post(ui + "/swarm", data={"user_count": 4, "spawn_rate": 4, "host": proxy.url,
                                                  "chaos_rate": "2", "chaos_mix": "kill,reload"}, timeout=10)
    assert started.json()["success"], started.text
    live = wait_until(lambda: (rows := consistency_rows(ui)).get("ok so far", {}).get("count", 0) > 50 and rows,
                      timeout=60, what="live counts in the tab")
    assert live["verdict"]["count"] == "running" and live["lost so far"]["count"] == 0
    wait_until(lambda: any(w.startswith("chaos ") for w in consistency_rows(ui)), timeout=30, what="chaos rows")

    assert requests.post(ui + "/stop", timeout=30).ok
    final = wait_until(lambda: (rows := consistency_rows(ui))["verdict"]["count"] in ("VALID", "INVALID") and rows,
                       timeout=120, what="the final verdict in the tab")  # users drain up to 10 s first
    assert final["verdict"]["count"] == "VALID" and "interrupted" not in final, final  # no run time: not early
    assert final["ok"]["count"] > 50 and final["lost"]["count"] == 0 and final["duplicated"]["count"] == 0
    assert {"chaos kill", "chaos reload"} & set(final)
    # A UI run gets a folder of its own under --report-dir, and its HTML report at Stop.
    [page] = wait_until(lambda: list((tmp_path / "report").glob("*-ui-r*/report.html")), timeout=60,
                        what="the UI run's report.html")
    assert "A Locust web-UI run against" in page.read_text() and "hits acknowledged" in page.read_text()
    assert locust.poll() is None  # the UI process stays up for the next run

    # Stopped before the run time it was given, a UI run is interrupted, and still judged.
    started = requests.post(ui + "/swarm", data={"user_count": 2, "spawn_rate": 2, "host": proxy.url,
                                                  "run_time": "300s"}, timeout=10)
    assert started.json()["success"], started.text
    wait_until(lambda: consistency_rows(ui).get("ok so far", {}).get("count", 0) > 20, timeout=60,
               what="the second run's hits")
    assert requests.post(ui + "/stop", timeout=30).ok
    final = wait_until(lambda: (rows := consistency_rows(ui))["verdict"]["count"] in ("VALID", "INVALID") and rows,
                       timeout=120, what="the interrupted run's verdict")
    assert final["verdict"]["count"] == "VALID", final
    assert "stopped in the web UI" in final["interrupted"]["detail"] and "of the 300 s asked" in final["interrupted"]["detail"]
