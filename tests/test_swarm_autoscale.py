"""``scripts/check --engine swarm --autoscale``: the autoscaling policy scales the web service through Docker.

The refusals run in the fast tier; the spike runs on a real daemon (tests/test_swarm.py's ``check``, skipped in
one line where Docker cannot run), with shorter AUTOSCALE_* settings than the defaults so that it reacts early.
"""
import json

import pytest

from bench.harness.options import parse_args
from bench.runfolder import AUTOSCALE, VERDICT_JSON
from tests.test_swarm import check

FAST = {"AUTOSCALE_COOLDOWN": "2", "AUTOSCALE_WINDOW": "1"}


@pytest.mark.fast
@pytest.mark.parametrize("argv, refusal", [
    (["--engine", "compose", "--autoscale", "6", "--chaos-rate", "0"], "--engine compose has no autoscaler"),
    (["--engine", "swarm", "--autoscale", "6", "--web", "2"], None),
])
def test_combinations_that_cannot_work_are_refused_in_one_line(argv, refusal, tmp_path, capsys):
    if refusal is None:  # the control: the same flags without the conflict are taken
        assert parse_args([*argv, "--report-dir", str(tmp_path)], {}).formation.autoscale == 6
        return
    with pytest.raises(SystemExit) as exit_:
        parse_args([*argv, "--report-dir", str(tmp_path)], {})
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and refusal in lines[-1], lines


@pytest.mark.fast
def test_a_bad_autoscale_setting_is_refused_before_anything_starts(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--engine", "swarm", "--autoscale", "6", "--report-dir", str(tmp_path)],
                   {"AUTOSCALE_TOLERANCE": "1.5"})
    assert "AUTOSCALE_TOLERANCE must be in [0, 1)" in capsys.readouterr().err


def spike(tmp_path, **env):
    """A 40 s spike (4 -> 200 -> 4 users) on 2 web tasks, autoscaled up to 6; it must end VALID. Its decisions."""
    done, out = check(tmp_path, "--web", "2", "--autoscale", "6", "--shape", "spike", "--users", "4",
                      "--duration", "40", "--chaos-rate", "0", env={**FAST, **env})
    assert done.returncode == 0 and "\nVALID" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    assert json.loads((out / VERDICT_JSON).read_text())["status"] == "valid"
    return [json.loads(line) for line in (out / AUTOSCALE).read_text().splitlines()]


@pytest.mark.docker
@pytest.mark.timeout(1800)  # a cold machine builds the image first
def test_a_spike_on_swarm_scales_the_web_service_through_docker_and_stays_valid(tmp_path):
    decisions = spike(tmp_path)
    ups = [d for d in decisions if d["action"] == "up"]
    assert ups and all(d["docker"] == f"docker service scale web={d['desired']}" for d in ups), decisions[-3:]
    after = [d for d in decisions if d["time"] > ups[0]["time"]]
    assert max(d["tasks_running"] for d in after) > 2, "the new tasks ran: capacity arrived"
    print(*(f"{d['action']} {d['previous']} -> {d['desired']}: {d['reason']}" for d in ups), sep="\n")


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_with_a_target_the_spike_never_reaches_no_task_is_added(tmp_path):
    """The negative control: the same spike, an AUTOSCALE_TARGET no load reaches; the journal shows no scale and
    never more than 2 tasks, so the test above sees capacity the policy asked for, not tasks that came anyway."""
    decisions = spike(tmp_path, AUTOSCALE_TARGET="100000")
    assert decisions[0]["action"] == "start" and len(decisions) > 10
    assert {d["action"] for d in decisions[1:]} == {"hold"} and not any("docker" in d for d in decisions)
    # Never more than the 2 tasks: Docker's count of running tasks may lag the first decision by one.
    assert max(d["tasks_running"] for d in decisions[1:]) == 2
