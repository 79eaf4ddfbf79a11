"""Fixtures that start real processes on free ports and always clean them up; what runs apart under pytest-xdist.

scripts/test runs the suite on pytest-xdist workers with ``--dist loadgroup``. Each test has its own tmp_path
and free ports, so tests run side by side, except where they share something; those go to one worker, one after
another, as one xdist group:

- the tests of a module that use one of its module- or session-scoped fixtures (a formation made once for the
  module), as group ``<module>``: one worker makes it, once;
- tests marked ``namespaces`` (tests/support.py's ``needs_namespaces``), as group ``namespaces``: every --hosts
  check sweeps away the namespaces of dead runs, which some of these tests make on purpose;
- tests marked ``docker``, as group ``docker``: they share one Docker engine (bench/harness/engine.py), which
  its lock lets one run use at a time, so spread over workers they would only wait for each other.

Real-process tests are handed out first, the in-process (fast) ones last.

A new test file needs nothing more: free ports (``free_port``, ``procs``) and tmp_path keep it apart.
"""
import pytest
import redis as redis_py

from tests.procs import Processes
from tests.relay import Relay


def shared_by(item):
    """The xdist group of a test that shares something with others (see above), or None."""
    for mark in ("namespaces", "docker"):
        if item.get_closest_marker(mark):
            return mark
    # pytest's own session fixtures (tmp_path_factory, ...) share nothing between tests: only this suite's count.
    defs = getattr(item, "_fixtureinfo", None)
    for fixturedefs in (defs.name2fixturedefs.values() if defs else ()):
        for fixturedef in fixturedefs:
            if fixturedef.scope != "function" and fixturedef.func.__module__.startswith("tests."):
                return item.module.__name__
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):  # -p no:xdist: one process runs everything anyway
        return
    for item in items:
        group = shared_by(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    # Real-process tests first (xdist hands out the largest groups, then tests in this order): the many small
    # in-process ones come last and fill the gaps, rather than a long check starting when the others are done.
    items.sort(key=lambda item: item.get_closest_marker("fast") is not None)


@pytest.fixture
def procs():
    with Processes() as processes:
        yield processes


@pytest.fixture
def redis_server(procs, tmp_path):
    return procs.redis(tmp_path / "redis")


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def relay_factory():
    relays = []

    def make(web, withhold=None):
        relays.append(Relay(web.port, withhold))
        return relays[-1]

    yield make
    for relay in relays:
        relay.close()
