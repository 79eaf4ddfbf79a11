"""A run stopped before its time is still judged: SIGTERM or SIGINT to a headless Locust master.

Real Redis, real gunicorn, a real Locust (one process, or a master with two
workers): once hits flow, the master gets the signal; Locust must still write
verdict.json and verdict.txt marked ``interrupted``, exit with the verdict's
status, and ``python -m bench.harness.report`` must render the folder. The
negative control is the run that reaches its time: it is not marked.
"""
import signal
import subprocess
import sys

import pytest

from bench.runfolder import JOURNAL, REPORT_HTML, VERDICT_JSON, VERDICT_TXT, read_json
from tests.procs import ROOT, VENV_BIN, process_env, wait_until


def locust(tmp_path, host, redis_url, *argv):
    command = [str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/locustfile.py"), "--headless", "--only-summary",
               "--host", host, "--redis-url", redis_url, "--report-dir", str(tmp_path / "report"), "-u", "4",
               "-r", "4", *argv]
    return subprocess.Popen(command, env=process_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


@pytest.mark.parametrize("sig, processes", [(signal.SIGTERM, []), (signal.SIGINT, ["--processes", "2"])],
                         ids=["SIGTERM-one-process", "SIGINT-master-and-workers"])
def test_a_run_stopped_by_a_signal_is_judged_and_marked_interrupted(procs, redis_url, redis_client, tmp_path,
                                                                    sig, processes):
    web = procs.web(redis_url, name="web.1")
    process = locust(tmp_path, web.url, redis_url, "-t", "120s", *processes)
    try:
        wait_until(lambda: (tmp_path / "report" / "live.json").exists(), timeout=60)  # the live check has run
        process.send_signal(sig)  # the master only: it tells its workers
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out = tmp_path / "report"
    verdict = read_json(out / VERDICT_JSON)
    assert verdict is not None, output[-3000:]
    assert process.returncode == verdict["exit_code"] == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert verdict["status"] == "valid" and verdict["ok"] > 0
    interrupted = verdict["interrupted"]
    assert interrupted["of_s"] == 120 and 0 < interrupted["after_s"] < 120 and "quit" in interrupted["cause"]
    assert "interrupted after" in (out / VERDICT_TXT).read_text() and (out / JOURNAL).exists()
    report = subprocess.run([sys.executable, "-m", "bench.harness.report", str(out)], cwd=ROOT, env=process_env(),
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "interrupted after" in (out / REPORT_HTML).read_text()


def test_a_run_that_reaches_its_time_is_not_marked_interrupted(procs, redis_url, tmp_path):
    web = procs.web(redis_url, name="web.1")
    process = locust(tmp_path, web.url, redis_url, "-t", "3s")
    output, _ = process.communicate(timeout=120)
    verdict = read_json(tmp_path / "report" / VERDICT_JSON)
    assert process.returncode == 0 and verdict["status"] == "valid", output[-3000:]
    assert "interrupted" not in verdict and "interrupted" not in (tmp_path / "report" / VERDICT_TXT).read_text()
