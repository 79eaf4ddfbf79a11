"""No vacuous verdicts: real runs that proved nothing end NO VERDICT (unknown, exit 2), saying why in one line.

Each is the negative control of one of bench/load/conclude.py's ``inconclusive``
rules, on a real Redis, real gunicorn or proxy and a real headless Locust: were
a rule to stop firing, its run would end VALID with exit 0 and the test fail.
(``scripts/check --web 0`` is refused before anything starts: tests/test_misuse.py.)
A run whose Redis died ends NO VERDICT too, after seconds rather than the whole
patience kept for a failover (that case: tests/test_failover.py), saying so.
"""
import re
import signal
import subprocess
from types import SimpleNamespace

from bench.load.conclude import PATIENCE_S, redis_prospect
from bench.runfolder import LIVE, REDIS_DATA, VERDICT_JSON, read_json
from tests.procs import ROOT, VENV_BIN, process_env, wait_until


def locust_command(tmp_path, host, redis_url, *argv):
    return [str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/locustfile.py"), "--headless", "--only-summary",
            "--host", host, "--redis-url", redis_url, "--report-dir", str(tmp_path / "report"), "--stop-timeout", "5",
            *argv]


def locust_run(tmp_path, host, redis_url, *argv):
    result = subprocess.run(locust_command(tmp_path, host, redis_url, *argv), env=process_env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    return result, read_json(tmp_path / "report" / VERDICT_JSON)


def no_verdict_line(result):
    [line] = [line for line in result.stdout.splitlines() if line.startswith("NO VERDICT: ")]
    return line


def test_a_run_that_never_acknowledged_a_hit_nor_reached_its_users_proves_nothing(procs, redis_url, tmp_path):
    proxy = procs.proxy(redis_url)  # no web instance behind it: every try is refused
    result, verdict = locust_run(tmp_path, proxy.url, redis_url, "-u", "30", "-r", "2", "-t", "4s",
                                 "--hit-tries", "2")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert verdict["status"] == "unknown" and not verdict["errors"] and verdict["ok"] == 0
    reasons = verdict["inconclusive"]
    assert "no hit was acknowledged" in reasons
    assert any(r.startswith("only 0 of ") and "--min-success" in r for r in reasons), reasons
    assert any(r.startswith("the load reached ") and "of the 30 asked" in r for r in reasons), reasons
    assert no_verdict_line(result) == "NO VERDICT: no hit was acknowledged"


def test_a_run_whose_chaos_mostly_never_happened_proves_nothing(procs, redis_url, tmp_path):
    # One worker, freezes asked four times a second: while it is frozen (3 s) every other freeze is skipped.
    web = procs.web(redis_url, name="web.1", WEB_WORKERS=1)
    result, verdict = locust_run(tmp_path, web.url, redis_url, "-u", "2", "-r", "2", "-t", "6s",
                                 "--chaos-rate", "4", "--chaos-mix", "freeze")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert verdict["status"] == "unknown" and not verdict["errors"], verdict
    assert not verdict["lost"] and not verdict["duplicated"] and verdict["ok"] > 0
    [reason] = [r for r in verdict["inconclusive"] if r.startswith("chaos was asked for")]
    assert "fewer than half" in reason
    assert no_verdict_line(result).startswith("NO VERDICT: ")


def test_a_run_whose_redis_died_ends_no_verdict_after_seconds_saying_how_long_and_why(procs, tmp_path):
    out = tmp_path / "report"
    server = procs.redis(out / REDIS_DATA)  # where scripts/check keeps it, so its supervisor is looked for there
    web = procs.web(server.url, name="web.1", WEB_WORKERS=1)
    with subprocess.Popen(locust_command(tmp_path, web.url, server.url, "-u", "2", "-r", "2", "-t", "8s"),
                          env=process_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as locust:
        wait_until(lambda: (out / LIVE).exists(), timeout=120, what="the run to be going")
        server.popen.send_signal(signal.SIGKILL)  # the supervisor: its server dies with it, nothing restarts it
        stdout, stderr = locust.communicate(timeout=300)
    verdict = read_json(out / VERDICT_JSON)
    assert locust.returncode == 2, stdout[-2000:] + stderr[-2000:]
    reason = verdict["errors"][0]
    assert reason.startswith("the ledger and run record could not be read: Redis did not answer for "), reason
    assert f"nothing could bring it back (no Sentinel configured, no supervisor runs for {out / REDIS_DATA}" in reason
    waited = float(re.search(r"did not answer for ([0-9.]+) s", reason).group(1))
    assert waited < PATIENCE_S / 2, reason  # a few seconds of grace, not the patience kept for a failover
    assert no_verdict_line(SimpleNamespace(stdout=stdout)) == f"NO VERDICT: {reason}"


def test_the_end_of_a_run_waits_for_redis_while_its_supervisor_runs_and_not_after(procs, tmp_path):
    run = SimpleNamespace(report_dir=tmp_path)
    server = procs.redis(tmp_path / REDIS_DATA)
    assert redis_prospect(run) == (True, f"the supervisor of {tmp_path / REDIS_DATA} runs")
    server.popen.send_signal(signal.SIGKILL)
    server.popen.wait()  # its pid file stays behind, naming a dead pid: the lock, not the file, says it runs
    assert redis_prospect(run) == (False, f"no Sentinel configured, no supervisor runs for {tmp_path / REDIS_DATA}")
