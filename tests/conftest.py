"""Fixtures that start real processes on free ports and always clean them up."""
import pytest
import redis as redis_py

from tests.procs import Processes
from tests.relay import Relay


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
