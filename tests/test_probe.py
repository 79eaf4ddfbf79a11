"""scripts/probe on real apps: each example's verdict, the demo app's and its three wrong-on-purpose settings,
the proxy (sticky only hides), zero-config, Ctrl-C, refusals, JUnit, and APP_DIR left as it was.

Each probe runs a few seconds of load (--duration 3) on real gunicorn (or node) processes; the run itself takes
longer (instances start, a restart of every instance, the final reads). Waits are generous: no tight timeouts.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import psutil
import pytest

from bench.packages import Missing, installed
from bench.paths import ROOT

EXAMPLES = ROOT / "examples"
RUN_TIMEOUT = 400  # seconds one probe may take on a loaded machine; a run normally ends in under a minute
STATELESS_PAGE = 'import flask\napp = flask.Flask(__name__)\n@app.get("/")\ndef index():\n    return "ok"\n'
SECRET_PER_PROCESS = ('import os, flask\napp = flask.Flask(__name__)\napp.secret_key = os.urandom(16)\n'
                      '@app.get("/")\ndef index():\n    flask.session["seen"] = True\n    return "ok"\n')
GUNICORN = "web: exec gunicorn -w 1 -b 127.0.0.1:$PORT app:app\n"


def probe(*args, timeout=RUN_TIMEOUT, tmp=None):
    """scripts/probe's run; with ``tmp``, its TMPDIR, where it makes its instances' disks."""
    env = dict(os.environ, TMPDIR=str(tmp)) if tmp else None
    return subprocess.run([sys.executable, "-m", "bench.probe", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def verdict(out):
    return json.loads((out / "probe.json").read_text())


def categories(data):
    return {probe["name"]: {name for name, count in probe["counts"].items() if count} for probe in data["probes"]}


def tree_digest(folder):
    """Every file's path, mode and content under ``folder``: equal before and after means left as it was."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if ".git" in path.parts or "__pycache__" in path.parts and path.is_relative_to(ROOT / ".venv"):
            continue
        digest.update(str(path).encode() + oct(path.lstat().st_mode).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def temp_folder(tmp_path):
    """A TMPDIR of the test's own, where the probe makes its instances' disks: empty again after the run."""
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


def app(folder, code, procfile=GUNICORN):
    folder.mkdir()
    (folder / "app.py").write_text(code)
    (folder / "Procfile").write_text(procfile)
    return folder


@pytest.mark.parametrize("example, status, found", [
    ("stateless-redis", "valid", set()),
    ("memory-records", "invalid", {"unseen elsewhere"}),
    ("sqlite-disk", "invalid", {"unseen elsewhere"}),
    ("per-process-secret", "invalid", {"unseen elsewhere"}),
    ("node-disk-files", "invalid", {"unseen elsewhere"}),
])
def test_each_example_gets_its_verdict(example, status, found, tmp_path):
    if example.startswith("node"):
        try:
            installed("node", "nodejs")
        except Missing as exc:
            pytest.skip(str(exc))
    before, tmp = tree_digest(EXAMPLES / example), temp_folder(tmp_path)
    result = probe(EXAMPLES / example, "--duration", 3, "--report-dir", tmp_path / "out", "--junit",
                   tmp_path / "probe.xml", tmp=tmp)
    data = verdict(tmp_path / "out")
    assert (result.returncode, data["status"]) == ({"valid": 0, "invalid": 1}[status], status), result.stdout
    for names in categories(data).values():
        assert found <= names, result.stdout
    cases = list(ElementTree.parse(tmp_path / "probe.xml").getroot().iter("testcase"))
    assert [case.get("name") for case in cases] == [p["name"] for p in data["probes"]]
    failures = [case.find("failure") for case in cases]
    assert all((failure is not None) == (status == "invalid") for failure in failures)
    assert all(name in failure.get("message") for failure in failures if failure is not None for name in found)
    assert data["writes"] >= 3 and data["reads"] >= 3
    assert tree_digest(EXAMPLES / example) == before, "the probe changed APP_DIR"
    assert not list(tmp.iterdir()), "an instance's disk was left behind"
    assert (tmp_path / "out" / "report.html").stat().st_size > 1000


@pytest.mark.parametrize("setting, broken", [
    (None, None),
    ("HIT_MODE=local", "hits"),  # negative controls: each makes one probe of the demo app INVALID
    ("SESSION_STORE=memory", "cart"),
    ("SCRATCH=keep", "uploads"),
])
def test_demo_app(setting, broken, tmp_path):
    result = probe(ROOT, "--duration", 3, "--report-dir", tmp_path / "out", *(["--env", setting] if setting else []))
    data = verdict(tmp_path / "out")
    statuses = {p["name"]: p["status"] for p in data["probes"]}
    if broken is None:
        assert result.returncode == 0 and statuses == dict.fromkeys(("hits", "cart", "uploads"), "valid"), \
            result.stdout
    else:
        assert result.returncode == 1 and statuses[broken] == "invalid", result.stdout
        assert [name for name, status in statuses.items() if status != "valid"] == [broken], result.stdout


def test_sticky_proxy_only_hides_state_until_a_restart(tmp_path):
    result = probe(EXAMPLES / "memory-records", "--proxy-sticky", "--duration", 3, "--report-dir", tmp_path / "out")
    found = categories(verdict(tmp_path / "out"))["records"]
    assert result.returncode == 1, result.stdout
    assert "lost at restart" in found and "unseen elsewhere" not in found, result.stdout
    assert "via proxy -> web." in result.stdout


def test_copy_isolation_keeps_app_dir_as_it_was(tmp_path):
    """Without a mount namespace each instance runs in a copy: SQLite's file is still one instance's own."""
    before = tree_digest(EXAMPLES / "sqlite-disk")
    result = probe(EXAMPLES / "sqlite-disk", "--isolation", "copy", "--duration", 3, "--report-dir", tmp_path / "out")
    assert result.returncode == 1 and "unseen elsewhere" in categories(verdict(tmp_path / "out"))["records"], \
        result.stdout
    assert tree_digest(EXAMPLES / "sqlite-disk") == before
    assert any(files for files in verdict(tmp_path / "out")["files"].values()), "the files each instance wrote"


def test_zero_config_finds_a_secret_made_per_process(tmp_path):
    result = probe(app(tmp_path / "app", SECRET_PER_PROCESS), "--report-dir", tmp_path / "out")
    data = verdict(tmp_path / "out")
    assert result.returncode == 1 and categories(data)["cookies"] == {"unseen elsewhere", "lost at restart"}, \
        result.stdout
    assert "secret made per process" in result.stdout


def test_zero_config_is_never_valid(tmp_path):
    """An app that keeps nothing, probed without a spec: NO VERDICT, 'no spec: nothing was written'."""
    result = probe(app(tmp_path / "app", STATELESS_PAGE), "--report-dir", tmp_path / "out", "--junit",
                   tmp_path / "probe.xml")
    assert result.returncode == 2 and "NO VERDICT: no spec: nothing was written" in result.stdout, result.stdout
    assert verdict(tmp_path / "out")["status"] == "unknown"
    cases = ElementTree.parse(tmp_path / "probe.xml").getroot().iter("testcase")
    assert {case.get("name"): [child.tag for child in case if child.tag != "system-out"] for case in cases} == {
        "cookies": ["error"], "same GET": ["error"]}


def test_a_read_that_never_succeeds_is_the_specs_fault(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    for name in ("app.py", "Procfile"):
        (folder / name).write_bytes((EXAMPLES / "stateless-redis" / name).read_bytes())
    spec = (EXAMPLES / "stateless-redis" / "factor6.toml").read_text()
    (folder / "factor6.toml").write_text(spec.replace('path = "/posts/{id}"', 'path = "/nowhere/{id}"'))
    assert "/nowhere/" in (folder / "factor6.toml").read_text()
    result = probe(folder, "--duration", 2, "--report-dir", tmp_path / "out")
    assert result.returncode == 2, result.stdout
    assert "the spec's read is wrong, not the app" in result.stdout


def test_an_app_that_never_becomes_ready_is_no_verdict_with_its_log(tmp_path):
    result = probe(app(tmp_path / "app", STATELESS_PAGE), "--command", "echo cannot start on $PORT >&2; exit 3",
                   "--report-dir", tmp_path / "out")
    assert result.returncode == 2, result.stdout
    assert "NO VERDICT: the app never became ready" in result.stdout and "cannot start on" in result.stdout


@pytest.mark.parametrize("args, says", [
    (["examples/nope"], "no such directory"),
    (["examples/stateless-redis", "--instances", "1"], "--instances: must be at least 2"),
    (["examples/stateless-redis", "--duration", "0"], "--duration: must be more than 0"),
    (["examples/stateless-redis", "--command", "exec gunicorn app:app"], "names no $PORT"),
    (["examples/stateless-redis", "--process", "worker"], "no 'worker' process type"),
    (["examples/stateless-redis", "--env", "NOEQUALS"], "must be NAME=VALUE"),
    (["examples/stateless-redis", "--isolation", "chroot"], "invalid choice"),
])
def test_refusals_are_one_line_before_anything_starts(args, says):
    started = time.monotonic()
    result = probe(*args, timeout=60)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
    assert time.monotonic() - started < 30  # nothing was started: no instance, no Redis


def test_a_spec_mistake_is_refused_naming_its_line(tmp_path):
    folder = app(tmp_path / "app", STATELESS_PAGE)
    (folder / "factor6.toml").write_text('[app]\nsettle = 1\n[[probe]]\nname = "x"\n'
                                         'write = { method = "POST", path = "/p", expct = [201] }\n'
                                         'read = { method = "GET", path = "/p" }\n')
    result = probe(folder, timeout=60)
    assert result.returncode == 2 and "factor6.toml:5" in result.stderr and "expct" in result.stderr


def test_ctrl_c_stops_everything_and_leaves_app_dir_as_it_was(tmp_path):
    example = EXAMPLES / "sqlite-disk"
    before, tmp = tree_digest(example), temp_folder(tmp_path)
    out = tmp_path / "out"
    runner = subprocess.Popen([sys.executable, "-m", "bench.probe", str(example), "--duration", "60",
                               "--report-dir", str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, TMPDIR=str(tmp)))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((out / "logs").glob("web.*.log"))) < 3:
            time.sleep(0.5)
        time.sleep(3)  # the instances answer and visitors write
        started = psutil.Process(runner.pid).children(recursive=True)
        assert len(started) >= 3, "the instances were running"
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130 and "interrupted by SIGINT" in output, output
    assert not [proc for proc in started if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE]
    assert not list(tmp.iterdir()), "an instance's disk was left behind"
    assert str(tmp) not in Path("/proc/mounts").read_text()
    assert tree_digest(example) == before


def test_each_instance_has_its_own_disk_and_temp(tmp_path):
    """The files each instance wrote are listed per instance, from its own disk (and only there)."""
    code = ('import flask, os, tempfile\napp = flask.Flask(__name__)\n@app.get("/")\ndef index():\n'
            '    open("here.txt", "a").write("x")\n'
            '    open(os.path.join(tempfile.gettempdir(), "scratch.txt"), "a").write("yy")\n    return "ok"\n')
    folder = app(tmp_path / "app", code)
    result = probe(folder, "--report-dir", tmp_path / "out")
    files = verdict(tmp_path / "out")["files"]
    assert result.returncode == 2 and "web.1:" in result.stdout
    written = {path for found in files.values() for path, _ in found}
    assert "./here.txt" in written and any(path.endswith("/scratch.txt") for path in written), written
    assert sorted(p.name for p in folder.iterdir()) == ["Procfile", "app.py"]


# -- the pure verdict, in-process (scripts/test -m fast)

def exchange(method, path, instance, status, at, body=""):
    from bench.probe.exchange import Exchange

    return Exchange(method, path, instance, f"http://127.0.0.1:1{path}", status, body, at)


def write_read(n, read_status, read_verdict, phase="elsewhere", unique=None, writer="web.1"):
    from bench.probe.history import Read, Write

    return Write("p", "p-1", exchange("POST", "/p", writer, 201, float(n)), True, "", writer, {}, unique,
                 [Read(phase, exchange("GET", f"/p/{n}", "web.2", read_status, n + 0.5), read_verdict)])


@pytest.mark.fast
def test_a_failed_read_is_unseen_while_the_writer_runs_and_lost_once_it_is_gone():
    from bench.probe.verdict import judge_probe

    writes = [write_read(n, 404, "status") for n in range(4)] + [write_read(9, 200, "ok")]
    assert judge_probe("p", writes, stopped={}).counts["unseen elsewhere"] == 4
    assert judge_probe("p", writes, stopped={"web.1": 2.0}).counts == {
        "unseen elsewhere": 2, "lost at restart": 2, "duplicated": 0, "wrong content": 0}
    final = [write_read(n, 404, "status", phase="final") for n in range(3)]
    assert judge_probe("p", final + [write_read(9, 200, "ok")], stopped={}).counts["lost at restart"] == 3


@pytest.mark.fast
def test_duplicates_wrong_content_and_no_verdict():
    from bench.probe.verdict import judge_probe

    same = [write_read(n, 200, "ok", unique="7") for n in range(3)]
    assert judge_probe("p", same, stopped={}).counts["duplicated"] == 2
    wrong = [write_read(n, 200, "content") for n in range(2)] + [write_read(5, 200, "ok")]
    assert judge_probe("p", wrong, stopped={}).counts["wrong content"] == 2
    few = judge_probe("p", [write_read(0, 200, "ok")], stopped={})
    assert few.status == "unknown" and "too few writes acknowledged" in few.reasons[0]
    never = judge_probe("p", [write_read(n, 404, "status") for n in range(3)], stopped={})
    assert never.status == "unknown" and "the spec's read is wrong" in never.reasons[0]
    assert judge_probe("p", [write_read(n, 200, "ok") for n in range(3)], stopped={}).status == "valid"
