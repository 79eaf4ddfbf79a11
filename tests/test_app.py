"""The web app in process, through Flask's test client: refusals, headers, and a dead backing service.

No server is started: the app's Redis client points at a port nothing listens
on, which is a real refused connection, not a mock. What needs a live Redis is
proved on real gunicorn processes in tests/test_web.py and test_exactly_once.py.
"""
import pytest

from scaler.processes import free_port
from web import create_app
from web.config import Config

pytestmark = pytest.mark.fast


@pytest.fixture
def client():
    app = create_app(Config(redis_url=f"redis://127.0.0.1:{free_port()}/0", instance="web.test"))
    return app.test_client()


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "semi;colon", '"unclosed'])
def test_a_malformed_idempotency_key_is_a_400_with_a_one_line_reason(client, key):
    response = client.post("/hits", headers={"Idempotency-Key": key})
    assert response.status_code == 400
    reason = response.get_json()["error"]
    assert "Idempotency-Key" in reason and "\n" not in reason


def test_two_idempotency_keys_are_refused(client):
    # However the two arrive (two fields, or folded into one "a, b"), neither is picked.
    response = client.post("/hits", headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    assert response.status_code == 400 and "Idempotency-Key" in response.get_json()["error"]


@pytest.mark.parametrize("method, path", [("post", "/hits"), ("get", "/"), ("get", "/hits"), ("get", "/readyz")])
def test_a_dead_backing_service_is_a_503_not_a_traceback(client, method, path):
    response = getattr(client, method)(path, headers={"Idempotency-Key": "r1:c1:1"})
    assert response.status_code == 503
    assert response.get_json()["error"].startswith("backing service unavailable")
    assert response.headers["X-Served-By"].startswith("web.test;pid=")


def test_liveness_needs_no_backing_service_and_names_the_instance(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["served_by"]["instance"] == "web.test"


@pytest.mark.parametrize("method, path, status", [("get", "/nowhere", 404), ("delete", "/hits", 405)])
def test_unknown_routes_and_methods_answer_json(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status and "error" in response.get_json()
