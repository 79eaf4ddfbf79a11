"""The suite's own machinery: the tests tests/conftest.py groups run on one pytest-xdist worker, one after another.

A real pytest, on 2 real xdist workers, runs a small suite in a temporary folder whose conftest is this suite's
grouping hook: four tests marked ``docker`` and four marked ``namespaces`` each write down the worker that ran
them. The control: four tests with no mark spread over both workers, so the grouping seen is not an accident of
one worker doing everything. (With pytest 9.2 and pytest-xdist 3.8 no group held: pyproject.toml pins pytest.)
"""
import collections
import subprocess
import sys

from tests.procs import ROOT, process_env

SUITE = '''
import os, time
import pytest

def ran(name):
    with open(os.environ["RAN_LOG"], "a") as log:
        log.write(f"{name} {os.environ['PYTEST_XDIST_WORKER']}\\n")
    time.sleep(0.2)

@pytest.mark.docker
@pytest.mark.parametrize("i", range(4))
def test_docker(i):
    ran("docker")

@pytest.mark.namespaces
@pytest.mark.parametrize("i", range(4))
def test_namespaces(i):
    ran("namespaces")

@pytest.mark.parametrize("i", range(4))
def test_plain(i):
    ran("plain")
'''


def test_what_conftest_groups_runs_on_one_worker_and_the_rest_spreads(tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    (tmp_path / "test_grouped.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    docker: d\n    namespaces: n\n")
    log = tmp_path / "ran.log"
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
                           "-q", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=process_env(RAN_LOG=log, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    workers = collections.defaultdict(set)
    for line in log.read_text().splitlines():
        name, worker = line.split()
        workers[name].add(worker)
    assert len(workers["docker"]) == 1 and len(workers["namespaces"]) == 1, dict(workers)
    assert len(workers["plain"]) == 2, f"the control: ungrouped tests spread over both workers, {dict(workers)}"
