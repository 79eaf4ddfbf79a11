"""Other front doors: keyless hits in the checker, the generated nginx and HAProxy configs, and a check through nginx.

The checker and config tests are pure (fast). The last test runs ``scripts/check
--front nginx`` on a real formation to a verdict; it is skipped, with the reason,
where nginx is not installed and cannot be.
"""
import subprocess

import pytest

from bench.harness.check import parse_args
from bench.harness.frontdoor import DOORS, config
from bench.runfolder import FRONT_CONF, VERDICT_JSON, read_json
from bench.verdict.checker import check
from tests.procs import ROOT, process_env


def keyless_run(numbers, unknown=0, counter_start=10, counter_end=None):
    """Journal events of keyless hits acknowledged with ``numbers``, then ``unknown`` ones that never completed."""
    events = []
    for i, number in enumerate(numbers):
        events += [{"type": "invoke", "key": f"r1:c:{i}", "time": 1.0, "keyless": True},
                   {"type": "ok", "key": f"r1:c:{i}", "time": 1.1, "number": number}]
    events += [{"type": "invoke", "key": f"r1:u:{i}", "time": 1.0, "keyless": True} for i in range(unknown)]
    end = counter_start + len(numbers) + unknown if counter_end is None else counter_end
    return check(events, [], counter_start, end)


@pytest.mark.fast
def test_keyless_hits_with_distinct_numbers_in_range_are_valid():
    verdict = keyless_run([11, 12, 13])
    assert verdict.valid and verdict.ok == 3, verdict.to_dict()
    assert verdict.stats["keyless"] == {"hits": 3, "acknowledged": 3, "unknown": 0}


@pytest.mark.fast
def test_unknown_keyless_hits_may_or_may_not_have_counted():
    assert keyless_run([11, 13], unknown=1).valid  # 12 went to the unknown hit
    assert keyless_run([11, 12], unknown=1, counter_end=12).valid  # the unknown hit was not applied


@pytest.mark.fast
def test_a_counter_moving_more_than_the_keyless_hits_is_a_duplicate_with_its_excess():
    """What a front door re-sending an applied keyless hit leaves: one number nobody was given."""
    verdict = keyless_run([11, 13], counter_end=13)
    assert verdict.status == "invalid" and verdict.gaps == [{"first": 12, "last": 12}]
    [item] = [item for item in verdict.duplicated if "delta" in item]
    assert item["excess"] == 1


@pytest.mark.fast
def test_one_number_acknowledged_to_two_keyless_hits_is_a_duplicate():
    verdict = keyless_run([11, 11], counter_end=11)
    assert any(item.get("number") == 11 for item in verdict.duplicated), verdict.to_dict()


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(DOORS))
def test_a_front_door_listens_on_loopback_and_dials_only_the_instances(name, tmp_path):
    text = config(name, ["127.0.0.1:10100", "127.0.0.1:10101"], 8123, tmp_path, env={"PROXY_TIMEOUT": "2"})
    assert DOORS[name][3] in text
    assert "127.0.0.1:8123" in text and "0.0.0.0" not in text
    dialled = [line.split()[-1].rstrip(";") for line in text.splitlines() 
               if line.strip().startswith("server ") and not line.strip().endswith("{")]
    assert dialled == ["127.0.0.1:10100", "127.0.0.1:10101"]
    assert "2000ms" in text  # the proxy's own timeout setting


@pytest.mark.fast
@pytest.mark.parametrize("other", [["--autoscale"], ["--hosts"]])
def test_a_static_front_door_refuses_what_changes_or_moves_the_instances(other, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--front", "haproxy", *other])
    assert "static list of instances" in capsys.readouterr().err


def test_check_through_nginx_runs_to_a_verdict(tmp_path):
    out = tmp_path / "report"
    result = subprocess.run([str(ROOT / "scripts/check"), "--front", "nginx", "--report-dir", str(out), "--web", "2",
                             "--duration", "10", "--chaos-mix", "kill,freeze", "--hits", "keyed"],
                            env=process_env(), capture_output=True, text=True, timeout=600)
    if "--front nginx skipped" in result.stdout:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    verdict = read_json(out / VERDICT_JSON)
    assert verdict and verdict["status"] in ("valid", "invalid"), result.stdout[-3000:] + result.stderr[-2000:]
    assert verdict["ok"] > 100, verdict["counts"]
    assert "proxy_next_upstream error timeout;" in (out / FRONT_CONF).read_text()
