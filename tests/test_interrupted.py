"""A stopped run is still judged: SIGTERM or SIGINT to a headless Locust master.

Real Redis, real gunicorn, a real Locust (one process, or a master with two
workers): once hits flow, the master gets the signal; Locust must still write
verdict.json and verdict.txt, marked ``interrupted`` when the run had a time
it did not reach, exit with the verdict's status, and ``python -m
bench.harness.report`` must render the folder. The controls: a run with no
time of its own, and one that reaches its time, are not marked.
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


@pytest.mark.parametrize("sig, argv", [(signal.SIGTERM, ["-t", "120s"]),
                                       (signal.SIGINT, ["-t", "120s", "--processes", "2"]),
                                       (signal.SIGTERM, [])],
                         ids=["SIGTERM-one-process", "SIGINT-master-and-workers", "SIGTERM-no-run-time"])
def test_a_run_stopped_by_a_signal_is_judged_and_marked_interrupted_before_its_time(procs, redis_url, tmp_path,
                                                                                    sig, argv):
    web = procs.web(redis_url, name="web.1")
    process = locust(tmp_path, web.url, redis_url, *argv)
    try:
        wait_until(lambda: (tmp_path / "report" / "live.json").exists(), timeout=60)  # the live check has run
        process.send_signal(sig)  # the master only: it tells its workers
        output, _ = process.communicate(timeout=300)  # drain, journals, conclusion: generous on a loaded machine
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out = tmp_path / "report"
    verdict = read_json(out / VERDICT_JSON)
    assert verdict is not None, output[-3000:]
    assert process.returncode == verdict["exit_code"] == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert verdict["status"] == "valid" and verdict["ok"] > 0 and (out / JOURNAL).exists()
    if "-t" not in argv:  # a run with no time of its own ends when stopped: judged, not interrupted
        assert "interrupted" not in verdict and "interrupted" not in (out / VERDICT_TXT).read_text()
        return
    interrupted = verdict["interrupted"]
    # Told to quit; or, when the workers stopped before the signal reached the plugin, "stopped before its time".
    assert interrupted["of_s"] == 120 and 0 < interrupted["after_s"] < 120
    assert "quit" in interrupted["cause"] or "before its time" in interrupted["cause"], interrupted
    assert "interrupted after" in (out / VERDICT_TXT).read_text()
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
