"""The Formation page in a real browser: Playwright driving Debian's Chromium against real processes.

A formation of two web instances and the proxy on a real Redis, Locust's web UI
on 127.0.0.1, the page opened in headless Chromium from Locust's own UI. First
the endpoints' refusals (409 between runs, 400 outside the formation, 403 from
another origin). One run: "kill worker" on web.1, its card changes and the
formation recovers, the live numbers count, the verdict is VALID. The negative
control: the same run, with a real scaler and "scale web" to 3, plus a click on
"add a bad instance", ends INVALID. Screenshots go to the test's tmp_path.
"""
import json
import subprocess
import sys

import pytest
import redis
import requests

from bench.packages import Missing, installed
from bench.runfolder import CHAOS, read_jsonl
from scaler.shared import Desired, read_status
from tests.procs import ROOT, VENV_BIN, Processes, free_port, process_env, wait_until
from common.schema import SCALER_KEY

LOAD_S = 6  # seconds of load before and after the clicks


def chromium():
    """Debian's Chromium, installed with apt-get when missing and we are root; else the test skips."""
    try:
        return installed("chromium", "chromium")
    except Missing as exc:
        pytest.skip(str(exc))


def playwright_api():
    """Playwright's sync API, pip-installed when missing (it is a test extra; its driver ships in the wheel)."""
    try:
        from playwright import sync_api
    except ImportError:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "playwright"], capture_output=True,
                              timeout=600)
        if done.returncode:
            pytest.skip(f"playwright is missing and pip could not install it: {done.stderr.decode()[-200:].strip()}")
        from playwright import sync_api
    return sync_api


@pytest.fixture(scope="module")
def browser():
    sync_api = playwright_api()
    path = chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """Redis, web.1 and web.2, the proxy and Locust's UI, shared by both runs (one after the other)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    with Processes() as procs:
        redis_url = procs.redis(tmp / "redis").url
        for name in ("web.1", "web.2"):
            procs.web(redis_url, name=name)
        proxy = procs.proxy(redis_url)
        port = free_port()
        procs.spawn([str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/locustfile.py"), "--web-host", "127.0.0.1",
                     "--web-port", str(port), "--host", proxy.url, "--redis-url", redis_url,
                     "--report-dir", str(tmp / "report")], process_env(), tmp / "locust.log")
        ui = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(ui + "/", timeout=2).ok, timeout=60, what="Locust's web UI")
        yield {"ui": ui, "proxy": proxy, "redis_url": redis_url, "procs": procs, "tmp": tmp}


def number(page, name):
    return int(page.locator(f"#{name}").inner_text().replace(",", ""))


def card(page, name):
    return page.locator(f'.card[data-name="{name}"]')


def start_run(stage, page):
    started = requests.post(stage["ui"] + "/swarm", data={"user_count": 4, "spawn_rate": 4,
                                                          "host": stage["proxy"].url}, timeout=10).json()
    assert started["success"], started
    page.goto(stage["ui"] + "/")  # Locust's own UI links to the page
    page.locator("#factor6-link").click()
    page.wait_for_url("**/factor6", timeout=30_000)
    page.wait_for_function("document.querySelector('#run').textContent.startsWith('running')", timeout=30_000)
    page.wait_for_function("Number(document.querySelector('#acknowledged').textContent.replace(/,/g, '')) > 20",
                           timeout=60_000)


def stop_run(stage, page):
    assert requests.post(stage["ui"] + "/stop", timeout=30).ok
    page.wait_for_function("['VALID', 'INVALID', 'NO VERDICT'].includes(document.querySelector('#verdict').textContent)",
                           timeout=90_000)
    return page.locator("#verdict").inner_text()


def test_the_buttons_refuse_what_is_not_the_formations_with_a_one_line_reason(stage):
    ui = stage["ui"]

    def post(path, body=None, **kwargs):
        response = requests.post(ui + path, json=body, timeout=60, **kwargs)
        assert response.text.count("\n") <= 1 and "error" in response.json(), response.text
        return response.status_code, response.json()["error"]

    # Between runs: what needs load is a conflict, not a bad request.
    assert post("/factor6/act", {"action": "kill", "target": "web.1"})[0] == 409
    assert post("/factor6/bad")[0] == 409
    assert requests.post(ui + "/swarm", data={"user_count": 2, "spawn_rate": 2, "host": stage["proxy"].url},
                         timeout=10).json()["success"]
    wait_until(lambda: requests.get(ui + "/factor6/state", timeout=5).json()["running"], timeout=30, what="the run")
    try:
        status, reason = post("/factor6/act", {"action": "kill", "target": "redis"})
        assert status == 400 and "web.1, web.2" in reason
        status, reason = post("/factor6/act", {"action": "kill", "target": "web.1", "pid": 1})
        assert status == 400 and "not a worker of web.1" in reason
        assert post("/factor6/act", {"action": "rm -rf", "target": "web.1"})[0] == 400
        assert post("/factor6/act", {"action": "freeze", "target": "web.1", "seconds": 3600})[0] == 400
        assert post("/factor6/act", ["kill"])[0] == 400
        assert post("/factor6/bad/remove", {"name": "web.1"})[0] == 400
        assert post("/factor6/scale", {"count": "five"})[0] == 400
        status, reason = post("/factor6/scale", {"count": 3})
        assert status == 409 and "no scaler is running" in reason
        status, reason = post("/factor6/act", {"action": "kill", "target": "web.1"}, headers={"Origin": "http://evil"})
        assert status == 403
    finally:
        assert requests.post(ui + "/stop", timeout=30).ok
        wait_until(lambda: requests.get(ui + "/factor6/state", timeout=5).json()["numbers"]["status"], timeout=90,
                   what="the run's conclusion, before the next run starts")


def test_a_click_kills_a_worker_the_card_shows_it_and_the_run_stays_valid(stage, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    start_run(stage, page)
    web1 = card(page, "web.1")
    assert web1.get_attribute("data-state") == "serving"
    assert card(page, "proxy").get_attribute("data-state") == "up"
    assert card(page, "redis").get_attribute("data-state") == "up"
    workers_before = web1.locator(".workers").inner_text()

    web1.locator('button[data-action="kill"]').click()
    page.wait_for_function("document.querySelector('#message').textContent.includes('kill web.1')", timeout=15_000)
    assert "error" not in (page.locator("#message").get_attribute("class") or "")
    # The card changes: a restart counted, a new worker pid under the same master; and it serves again.
    page.wait_for_function("""(() => { const c = document.querySelector('.card[data-name="web.1"]');
        return [...c.querySelectorAll('dt')].some(dt => dt.textContent === 'restarts' && dt.nextSibling.textContent !== '0')
            && c.dataset.state === 'serving'; })()""", timeout=30_000)
    assert web1.locator(".workers").inner_text() != workers_before
    page.wait_for_timeout(LOAD_S * 1000)
    assert number(page, "acknowledged") > 50 and number(page, "lost") == 0 and number(page, "duplicated") == 0
    assert page.locator("#fault-legend").inner_text().strip().startswith("kill")
    assert "[by hand]" in page.locator("#events").inner_text()
    page.screenshot(path=str(tmp_path / "formation-page-running.png"), full_page=True)

    assert stop_run(stage, page) == "VALID", page.locator("#headline").inner_text()
    page.screenshot(path=str(tmp_path / "formation-page-valid.png"), full_page=True)
    page.close()


def test_a_click_on_add_a_bad_instance_makes_the_same_run_invalid(stage, browser, tmp_path):
    client = redis.Redis.from_url(stage["redis_url"], decode_responses=True)
    # The scaler's default SCALER_SETTLE (3 s): room for the count to follow bad.1 before it counts as foreign.
    stage["procs"].spawn([sys.executable, "-m", "scaler"], process_env(REDIS_URL=stage["redis_url"]),
                         stage["tmp"] / "scaler.log")
    wait_until(lambda: read_status(client, SCALER_KEY), timeout=30, what="the scaler's lease")
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    start_run(stage, page)
    page.locator("#scale-count").fill("3")
    page.locator("#scale").click()  # through the scaler's count, as scripts/scale
    page.wait_for_selector('.card[data-name="web.3"][data-state="serving"]', timeout=60_000)

    page.locator("#add-bad").click()
    page.wait_for_selector('.card[data-name="bad.1"][data-state="serving"]', timeout=60_000)
    # The card can show bad.1 serving a moment before the button's answer moves the count with it.
    wait_until(lambda: Desired(client).get() == 4, timeout=30, what="the count to move with the bad instance")
    assert card(page, "web.3").get_attribute("data-state") == "serving", "no good instance drained for it"
    page.wait_for_function("Number(document.querySelector('#duplicated').textContent.replace(/,/g, '')) > 0",
                           timeout=60_000)
    page.screenshot(path=str(tmp_path / "formation-page-bad.png"), full_page=True)

    assert stop_run(stage, page) == "INVALID"
    assert "duplicated" in page.locator("#headline").inner_text()
    run_folder = sorted((stage["tmp"] / "report").glob("*-ui-*"))[-1]  # each web-UI run has a folder of its own
    manual = [e for e in read_jsonl(run_folder / CHAOS) if e.get("manual")]
    assert {"scale_web", "bad", "remove"} <= {e["action"] for e in manual}, json.dumps(manual)
    # Stopped with the run: the bad instance is no longer registered, its card gone or marked so.
    page.wait_for_function("""(() => { const c = document.querySelector('.card[data-name="bad.1"]');
        return !c || c.dataset.state === 'gone'; })()""", timeout=30_000)
    page.close()

