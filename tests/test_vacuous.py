"""No vacuous verdicts: real runs that proved nothing end NO VERDICT (unknown, exit 2), saying why in one line.

Each is the negative control of one of bench/load/conclude.py's ``inconclusive``
rules, on a real Redis, real gunicorn or proxy and a real headless Locust: were
a rule to stop firing, its run would end VALID with exit 0 and the test fail.
(``scripts/check --web 0`` is refused before anything starts: tests/test_misuse.py.)
"""
import subprocess

from bench.runfolder import VERDICT_JSON, read_json
from tests.procs import ROOT, VENV_BIN, process_env


def locust_run(tmp_path, host, redis_url, *argv):
    out = tmp_path / "report"
    result = subprocess.run(
        [str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/locustfile.py"), "--headless", "--only-summary",
         "--host", host, "--redis-url", redis_url, "--report-dir", str(out), "--stop-timeout", "5", *argv],
        env=process_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    return result, read_json(out / VERDICT_JSON)


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
