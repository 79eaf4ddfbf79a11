"""scripts/check's settings become specs once: flags, the environment where a flag is absent, and the way back.

In-process (the fast tier): bench.harness.options and bench.harness.model, nothing started.
"""
import dataclasses
import time
from pathlib import Path

import pytest

from bench.harness.check import header, progress_line
from bench.harness.model import KINDS, CheckSpec, Formation, FormationSpec, LoadSpec, build_formation
from bench.harness.options import command, parse_args

pytestmark = pytest.mark.fast


def spec_of(argv, env=None, tmp_path=None):
    return parse_args([*argv, "--report-dir", str(tmp_path)], env or {})


def test_flags_make_the_specs_and_say_where_each_came_from(tmp_path):
    check = spec_of(["--web", "3", "--workers", "1", "--duration", "12", "--workload", "session,hits"], {}, tmp_path)
    assert check.formation == FormationSpec(web=3, workers=1, report_dir=tmp_path)
    assert check.load == LoadSpec(duration=12, workload="session,hits")
    assert check.origins == {"web": "--web", "workers": "--workers", "duration": "--duration",
                             "workload": "--workload", "report_dir": "--report-dir"}


@pytest.mark.parametrize("variable, value, field, expected", [
    ("SESSION_STORE", "memory", "session_store", "memory"),
    ("HIT_MODE", "seed", "mode", "seed"),
    ("SCRATCH", "keep", "scratch", "keep"),
    ("WEB_WORKERS", " 3 ", "workers", 3),
    ("REDIS_PERSISTENCE", "none", "redis_persistence", "none"),
    ("PROXY_STICKY", "cookie", "proxy_sticky", True),
])
def test_the_environment_sets_what_a_flag_would_and_says_so(variable, value, field, expected, tmp_path):
    check = spec_of([], {variable: value}, tmp_path)
    assert getattr(check.formation, field) == expected
    assert check.origins[field] == f"{variable} in the environment"
    assert f"({variable} in the environment)" in header(check).splitlines()[1]


def test_a_flag_and_the_same_value_in_the_environment_agree(tmp_path):
    check = spec_of(["--session-store", "memory", "--proxy-sticky"], {"SESSION_STORE": "memory",
                                                                      "PROXY_STICKY": "cookie"}, tmp_path)
    assert check.origins["session_store"] == "--session-store" and check.formation.proxy_sticky


@pytest.mark.parametrize("argv, env, words", [
    (["--session-store", "redis"], {"SESSION_STORE": "memory"},
     "--session-store redis and SESSION_STORE=memory in the environment disagree"),
    (["--workers", "2"], {"WEB_WORKERS": "3"}, "--workers 2 and WEB_WORKERS=3 in the environment disagree"),
    (["--proxy-sticky"], {"PROXY_STICKY": "none"}, "--proxy-sticky and PROXY_STICKY=none"),
    (["--no-proxy-sticky"], {"PROXY_STICKY": "cookie"}, "--no-proxy-sticky and PROXY_STICKY=cookie"),
    (["--autoscale", "6"], {"AUTOSCALE_MAX": "9"}, "--autoscale 6 and AUTOSCALE_MAX=9"),
    ([], {"HIT_MODE": "atomc"}, "HIT_MODE=atomc in the environment: must be one of atomic, seed, local"),
    ([], {"WEB_WORKERS": "0"}, "WEB_WORKERS=0 in the environment: must be at least 1"),
    (["--front", "nginx"], {"PROXY_STICKY": "cookie"}, "PROXY_STICKY=cookie in the environment is this proxy's setting"),
])
def test_a_disagreeing_or_bad_environment_is_refused_in_one_line(argv, env, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        spec_of(argv, env, tmp_path)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and words in err and err.count("\n") == 1, err


def test_a_bare_autoscale_takes_its_maximum_from_the_environment_and_autoscale_max_alone_starts_nothing(tmp_path):
    assert spec_of(["--autoscale"], {}, tmp_path).formation.autoscale == 8
    check = spec_of(["--autoscale"], {"AUTOSCALE_MAX": "6"}, tmp_path)
    assert check.formation.autoscale == 6 and check.origins["autoscale"] == "AUTOSCALE_MAX in the environment"
    assert spec_of([], {"AUTOSCALE_MAX": "6"}, tmp_path).formation.autoscale is None


@pytest.mark.parametrize("check", [
    CheckSpec(FormationSpec(), LoadSpec()),
    CheckSpec(FormationSpec(web=2, session_store="memory", proxy_sticky=True, workers=1), LoadSpec(workload="session")),
    CheckSpec(FormationSpec(front="nginx", hits="keyless"), LoadSpec(chaos_mix="kill,freeze", chaos_rate=0.5)),
    CheckSpec(FormationSpec(autoscale=6, redis="sentinel"), LoadSpec(shape="spike", duration=120, processes=2)),
    CheckSpec(FormationSpec(hosts=True, fault_s=2.5), LoadSpec(chaos_mix="partition", seed=9)),
])
def test_a_spec_goes_to_options_and_back_unchanged_whatever_the_shell_says(check, tmp_path):
    formation = dataclasses.replace(check.formation, report_dir=tmp_path)
    shell = {"SESSION_STORE": formation.session_store, "HIT_MODE": "atomic"}  # agrees: refused otherwise
    back = parse_args(command(dataclasses.replace(check, formation=formation)), shell)
    assert (back.formation, back.load) == (formation, check.load)


@pytest.mark.parametrize("spec, kind", [(FormationSpec(), "honcho"), (FormationSpec(front="haproxy"), "front"),
                                        (FormationSpec(hosts=True), "hosts")])
def test_the_factory_chooses_a_kind_by_engine_front_and_hosts_and_each_is_a_formation(spec, kind, tmp_path):
    formation = build_formation(dataclasses.replace(spec, report_dir=tmp_path))  # made, not started: nothing runs
    assert spec.kind == kind and type(formation).__name__ == KINDS[kind].split(":")[1]
    assert isinstance(formation, Formation) and formation.exited() is None and formation.spec.report_dir == tmp_path


def test_the_header_names_only_what_the_workloads_use(tmp_path):
    session = header(spec_of(["--workload", "session"], {}, tmp_path)).splitlines()[0]
    assert "redis sessions" in session and "atomic" not in session and "keyed" not in session, session
    hits = header(spec_of([], {}, tmp_path))
    assert "(atomic hits)" in hits and "keyed hits" in hits and "sessions" not in hits and "\n" not in hits, hits


def test_the_progress_line_never_runs_past_the_duration(tmp_path):
    load = LoadSpec(duration=60)
    assert "concluding" in progress_line(load, time.monotonic() - 65, Path(tmp_path))
    assert " 30/60s" in progress_line(load, time.monotonic() - 30, Path(tmp_path))
    assert "stopping" in progress_line(load, time.monotonic() - 30, Path(tmp_path), "stopping")
