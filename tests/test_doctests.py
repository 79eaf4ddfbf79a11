"""The usage examples in the pure modules' docstrings run, and each module really has some.

A doctest collector that found no example would pass in silence; here a module
whose examples vanished fails, as one whose examples broke does.
"""
import doctest
import importlib

import pytest

pytestmark = pytest.mark.fast

PURE_MODULES = [
    "backing.config", "backing.replication", "common.settings", "web.config", "web.durability", "common.schema", "common.clock",
    "proxy.config", "proxy.metrics", "proxy.headers", "proxy.discovery", "proxy.limits", "proxy.sticky",
    "scaler.config", "scaler.policy", "scaler.procfile",
    "bench.chaos.vocabulary", "bench.verdict.checker", "bench.verdict.model", "bench.verdict.failover",
    "bench.load.options", "bench.harness.story", "bench.arguments", "bench.benchmarks.stats",
    "bench.verdict.ops", "bench.verdict.sessions", "bench.verdict.uploads", "bench.verdict.workloads",
    "bench.load.board", "bench.harness.timeline",
    "bench.harness.outages",
]


@pytest.mark.parametrize("name", PURE_MODULES)
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(importlib.import_module("bench.paths").ROOT)  # scaler.procfile's example reads ./Procfile
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example left"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
