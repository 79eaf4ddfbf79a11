"""The tests' door to real processes: bench.harness.launch's starter, and the helpers tests import with it.

    with Processes() as procs:
        redis_url = procs.redis(tmp_path).url
        web = procs.web(redis_url, name="web.1")
        requests.post(web.url + "/hits")

The ``procs`` fixture (tests/conftest.py) is one of these per test.
"""
from bench.harness.launch import Processes, process_env
from bench.paths import BIN as VENV_BIN
from bench.paths import ROOT
from scaler.processes import free_port, honcho_base_port, kill_tree, wait_until

__all__ = ["Processes", "ROOT", "VENV_BIN", "free_port", "honcho_base_port", "kill_tree", "process_env", "wait_until"]
