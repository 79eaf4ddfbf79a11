"""scripts/check end to end: a short run under chaos passes, and both negative controls fail.

This is CI's consistency check. Each run is a real formation under honcho, real
Locust, a real chaos monkey and the checker; the assertions read what the run
wrote, so a checker that stopped detecting would fail the negative controls.
"""
import subprocess

import pytest

from bench.chaos.vocabulary import is_action
from bench.runfolder import CHAOS, REPORT_HTML, VERDICT_JSON, read_json, read_jsonl
from tests.procs import ROOT, process_env

ACTIONS_REQUIRED = {"kill", "term", "reload", "freeze"}


def check(tmp_path, *args):
    out = tmp_path / "report"
    result = subprocess.run([str(ROOT / "scripts/check"), "--report-dir", str(out), *args],
                            env=process_env(), capture_output=True, text=True, timeout=600)
    verdict = read_json(out / VERDICT_JSON)
    return result, verdict, out


def test_thirty_seconds_of_chaos_on_four_instances_lose_and_duplicate_nothing(tmp_path):
    result, verdict, out = check(tmp_path, "--web", "4", "--duration", "30", "--chaos-rate", "1.2",
                                 "--chaos-mix", "kill=2,term,reload,freeze,scale", "--seed", "3")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert verdict["status"] == "valid" and verdict["ok"] > 300, verdict["counts"]  # 10/s: even a loaded machine
    actions = [e for e in read_jsonl(out / CHAOS) if is_action(e) and e["outcome"] == "ok"]
    assert len(actions) >= 30
    assert ACTIONS_REQUIRED <= {e["action"] for e in actions}
    page = (out / REPORT_HTML).read_text()
    assert page.count("data:image/png;base64,") == 1
    assert "hits acknowledged under" in page and "none lost, none duplicated" in page, "the conclusion in words"
    assert "the proxy retried" in page or "the proxy had nothing to retry" in page
    assert "VALID" in result.stdout


# The local control runs Locust as a master with two worker processes: the journals arrive by message.
@pytest.mark.parametrize("mode, violation, locust_processes", [("seed", "duplicated", "0"), ("local", "duplicated", "2")])
def test_negative_controls_fail_and_say_why(tmp_path, mode, violation, locust_processes):
    result, verdict, out = check(tmp_path, "--mode", mode, "--web", "4", "--duration", "10", "--chaos-rate", "1",
                               "--processes", locust_processes)
    assert result.returncode == 1, result.stdout[-3000:]
    assert verdict["status"] == "invalid" and verdict[violation], verdict["counts"]
    assert "INVALID" in result.stdout
    assert len(verdict["source"]["journals"]) == max(1, int(locust_processes))
    page = (out / REPORT_HTML).read_text()
    assert f"Wrong on purpose: {mode} mode" in page and f"in {mode} mode (wrong on purpose)" in page
