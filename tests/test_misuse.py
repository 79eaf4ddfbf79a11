"""Misuse is refused before anything starts: one line saying why, a non-zero exit, within seconds.

The issue's list of misuses, each tried the way a user would: scripts/check and
scripts/demo arguments, the chaos process's settings, Locust's command line and
its web UI's start form, scripts/ps without Redis, a Locust whose Redis is away.
The in-process cases (argument parsing) are the fast tier; the others run the
real commands and time them.
"""
import subprocess
import sys
import time

import pytest
import requests

from bench.harness.check import parse_args
from bench.load.options import problems
from tests.procs import ROOT, VENV_BIN, free_port, process_env, wait_until

REFUSED_WITHIN_S = 10  # the bound; parsing happens before any process is started
LOCUST = [str(VENV_BIN / "locust"), "-f", str(ROOT / "bench/locustfile.py")]

CHECK_MISUSES = [
    (["--chaos-mix", "kil"], "did you mean kill?"),
    (["--web", "0"], "--web: must be at least 1"),
    (["--chaos-rate", "-1"], "--chaos-rate: must be at least 0"),
    (["--duration", "0"], "--duration: must be more than 0"),
    (["--duration", "-5"], "--duration: must be more than 0"),
    (["--users", "0"], "--users: must be at least 1"),
    (["--workers", "0"], "--workers: must be at least 1"),
    (["--mode", "atomc"], "invalid choice: 'atomc'"),
    (["--min-success", "2"], "between 0 and 1"),
    (["--report-dir", "/proc/factor6"], "cannot be made"),
]


def refused_in_one_line(result, words):
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0, result.stdout + result.stderr
    assert any(words in line for line in lines), lines
    return lines


@pytest.mark.fast
@pytest.mark.parametrize("argv, words", CHECK_MISUSES)
def test_scripts_check_refuses_each_misuse_while_parsing(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and words in err and err.count("\n") == 1, err


@pytest.mark.fast
def test_the_start_form_values_are_checked_with_the_same_words():
    assert problems({"chaos_rate": "1", "chaos_mix": "kill=2,term", "num_users": "4"}) == []
    found = problems({"chaos_rate": "-1", "chaos_mix": "kil", "num_users": "0", "hit_tries": "x"})
    assert len(found) == 4 and any("did you mean kill?" in line for line in found), found


@pytest.mark.parametrize("command, words", [
    (["scripts/check", "--chaos-mix", "kil"], "did you mean kill?"),
    (["scripts/demo", "--duration", "-5"], "--duration: must be more than 0"),  # demo passes it to check
    (["scripts/check", "--web", "0", "--duration", "3"], "no instances proves nothing"),
])
def test_the_scripts_refuse_before_starting_anything(command, words):
    began = time.monotonic()
    result = subprocess.run([str(ROOT / command[0]), *command[1:]], env=process_env(), capture_output=True,
                            text=True, timeout=120)
    assert time.monotonic() - began < REFUSED_WITHIN_S
    lines = refused_in_one_line(result, words)
    assert result.returncode == 2 and len(lines) == 1, lines


@pytest.mark.parametrize("env, words", [({"CHAOS_RATE": "-1"}, "--rate: must be at least 0"),
                                         ({"CHAOS_RATE": "1", "CHAOS_MIX": "freze"}, "did you mean freeze?")])
def test_the_chaos_process_type_refuses_bad_settings(env, words):
    result = subprocess.run([sys.executable, "-m", "bench.chaos"], env=process_env(**env), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(refused_in_one_line(result, words)) == 1


@pytest.mark.parametrize("argv, words", [(["--chaos-mix", "kil", "--chaos-rate", "1"], "did you mean kill?"),
                                          (["-u", "0"], "users must be at least 1"),
                                          (["--chaos-rate", "-1"], "--chaos-rate must be at least 0")])
def test_locust_refuses_bad_options_at_start_up(argv, words, tmp_path):
    began = time.monotonic()
    result = subprocess.run([*LOCUST, "--headless", "-t", "5s", "--host", "http://127.0.0.1:9", *argv,
                             "--report-dir", str(tmp_path)], env=process_env(), cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert time.monotonic() - began < REFUSED_WITHIN_S
    assert result.returncode == 2
    refused_in_one_line(result, words)


def test_a_locust_whose_redis_is_away_stops_at_once_with_the_reason(tmp_path):
    began = time.monotonic()
    result = subprocess.run([*LOCUST, "--headless", "-u", "2", "-t", "60s", "--host", "http://127.0.0.1:9",
                             "--redis-url", f"redis://127.0.0.1:{free_port()}/0", "--report-dir", str(tmp_path),
                             "--only-summary"], env=process_env(), cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert time.monotonic() - began < REFUSED_WITHIN_S, "the run must stop, not go on for its 60 s"
    assert result.returncode == 2
    [line] = [line for line in result.stderr.splitlines() if "starting the run failed" in line]
    assert "Connection refused" in line and "Traceback" not in result.stderr


def test_the_web_ui_start_form_answers_the_error_instead_of_starting(procs, tmp_path):
    port = free_port()
    locust = procs.spawn([*LOCUST, "--web-host", "127.0.0.1", "--web-port", str(port), "--host",
                          "http://127.0.0.1:9", "--report-dir", str(tmp_path)], process_env(), tmp_path / "locust.log")
    ui = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(ui, timeout=2).ok, timeout=60, what="Locust's web UI")
    answer = requests.post(ui + "/swarm", data={"user_count": 2, "spawn_rate": 2, "host": "http://127.0.0.1:9",
                                                "chaos_rate": "1", "chaos_mix": "kil"}, timeout=10).json()
    assert answer["success"] is False and "did you mean kill?" in answer["message"], answer
    assert requests.get(ui + "/stats/requests", timeout=5).json()["state"] == "ready", "nothing was started"
    assert locust.poll() is None


@pytest.mark.parametrize("env, words", [({"HIT_MODE": "atomc"}, "HIT_MODE must be one of atomic, seed, local"),
                                         ({"WEB_WORKERS": "0"}, "WEB_WORKERS must be a whole number of at least 1")])
def test_the_web_process_type_refuses_bad_settings_before_forking(env, words):
    result = subprocess.run([str(VENV_BIN / "gunicorn"), "-c", "web/gunicorn_conf.py", "web:create_app()"],
                            env=process_env(PORT=free_port(), **env), cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and len(refused_in_one_line(result, words)) == 1, result.stderr


def test_scripts_ps_without_redis_says_so_in_one_line():
    result = subprocess.run([str(ROOT / "scripts/ps"), "--redis-url", f"redis://127.0.0.1:{free_port()}/0"],
                            env=process_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(refused_in_one_line(result, "does not answer")) == 1
