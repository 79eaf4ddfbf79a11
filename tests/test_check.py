"""scripts/check end to end: a short run under chaos passes, both negative controls fail, a setting from the
environment counts as its flag would, and a check stopped half-way is still judged.

This is CI's consistency check. Each run is a real formation under honcho, real
Locust, a real chaos monkey and the checker; the assertions read what the run
wrote, so a checker that stopped detecting would fail the negative controls.
"""
import contextlib
import signal
import subprocess

import psutil
import pytest

from bench.chaos.vocabulary import is_action
from bench.runfolder import CHAOS, LIVE, LOCUST_LOG, REPORT_HTML, VERDICT_JSON, read_json, read_jsonl
from tests.procs import ROOT, process_env, wait_until

ACTIONS_REQUIRED = {"kill", "term", "reload", "freeze"}


def check(tmp_path, *args, **env):
    out = tmp_path / "report"
    result = subprocess.run([str(ROOT / "scripts/check"), "--report-dir", str(out), *args],
                            env=process_env(**env), capture_output=True, text=True, timeout=600)
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


def test_a_setting_from_the_environment_counts_as_its_flag_would(tmp_path):
    # The negative control of the memory session store, chosen the twelve-factor way: by the environment.
    result, verdict, out = check(tmp_path, "--workload", "session", "--chaos-rate", "0", "--duration", "10",
                                 SESSION_STORE="memory")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert verdict["status"] == "invalid" and "INVALID: session: vanished" in result.stdout, verdict["counts"]
    header = result.stdout.splitlines()[:2]
    assert "(memory sessions)" in header[0] and "hits" not in header[0].split(" behind ")[0].split(" on ")[1], header
    assert "session store memory (SESSION_STORE in the environment)" in header[1], header


def start_check(out, *args):
    return subprocess.Popen([str(ROOT / "scripts/check"), "--report-dir", str(out), "--web", "2", "--duration", "120",
                             "--chaos-rate", "1", *args], env=process_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def check_under_load(out):
    """scripts/check (start_check) once its live view counts 200 hits made; killed on the way out."""
    run = start_check(out)
    try:
        wait_until(lambda: read_json(out / LIVE, {}).get("ok", 0) > 200, timeout=180, what="hits under way")
        yield run
    finally:
        run.kill()


def test_a_check_stopped_half_way_is_still_judged(tmp_path):
    out = tmp_path / "report"
    with check_under_load(out) as run:
        run.send_signal(signal.SIGINT)
        printed, _ = run.communicate(timeout=300)
    assert run.returncode == 130, printed[-3000:]
    assert "SIGINT: stopping the load" in printed and "stopped by SIGINT" in printed, printed[-3000:]
    verdict = read_json(out / VERDICT_JSON)
    assert verdict and verdict["status"] in ("valid", "invalid"), printed[-3000:]
    assert verdict["ok"] > 200 and verdict.get("interrupted"), (verdict.get("counts"), printed[-3000:])
    assert (out / REPORT_HTML).exists() and "interrupted" in (out / REPORT_HTML).read_text()


def test_a_second_signal_aborts_at_once_and_says_what_is_left_where(tmp_path):
    out = tmp_path / "report"
    with check_under_load(out) as run:
        run.send_signal(signal.SIGINT)
        # Once the first is acted on (signals sent at once may arrive as one), a second aborts.
        wait_until(lambda: "Got SIGTERM" in (out / LOCUST_LOG).read_text(), timeout=60, what="Locust told to stop")
        run.send_signal(signal.SIGINT)
        printed, _ = run.communicate(timeout=120)
    assert run.returncode == 130, printed[-3000:]
    last = printed.strip().splitlines()[-1]
    assert last.startswith("interrupted by SIGINT") and f"left in {out}:" in last and "locust.log" in last, last
    assert not (out / REPORT_HTML).exists(), "aborted: no report"
    assert ("no verdict" in last) != (out / VERDICT_JSON).exists(), last  # Locust may have judged just before
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]
    assert not left, left
