"""Sessions and uploads in process, through Flask's test client: every store, bad input, dead Redis.

Two ``create_app()`` calls stand for two processes. The fast tier needs no
server (Redis, where named, is a port nothing listens on: a real refusal); the
tests marked ``redis`` start a real redis-server. What needs gunicorn is in
tests/test_workloads.py.
"""
import os
import time
from dataclasses import replace

import pytest

from scaler.processes import free_port
from web import create_app
from web.config import Config
from common.schema import upload_id

DEAD = Config(redis_url=f"redis://127.0.0.1:{free_port()}/0", instance="web.test", secret_key="s3cret")
NUMBERS = b"1 2 3\n40\n"


def app_client(config=DEAD, **changes):
    return create_app(replace(config, **changes)).test_client()


def sign_in(client, visitor="ana"):
    response = client.post("/session", json={"visitor": visitor})
    assert response.status_code == 200, response.get_json()
    return response


def add(client, item, key):
    return client.post("/cart/items", json={"item": item}, headers={"Idempotency-Key": key})


def one_line_error(response, status):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    reason = response.get_json()["error"]
    assert reason and "\n" not in reason
    return reason


@pytest.mark.fast
def test_the_cookie_store_keeps_the_cart_exactly_once_and_any_process_with_the_secret_reads_it():
    one, other = app_client(session_store="cookie"), app_client(session_store="cookie")
    sign_in(one)
    assert add(one, "tea", "r1:ana:1").get_json()["replayed"] is False
    other.set_cookie("session", one.get_cookie("session").value)
    replay = add(other, "tea", "r1:ana:1")  # a retry landing on another process
    assert replay.get_json()["replayed"] is True and replay.headers["Idempotent-Replayed"] == "true"
    add(other, "jam", "r1:ana:2")
    assert other.get("/cart").get_json()["cart"] == ["tea", "jam"]
    assert other.delete("/session").status_code == 200
    assert "not signed in" in one_line_error(other.get("/cart"), 401)


@pytest.mark.parametrize("store", [pytest.param("cookie", marks=pytest.mark.fast), "redis"])
def test_a_retried_sign_out_gets_its_first_answer_and_the_session_stays_ended(store, request):
    """Its first answer lost with a killed worker, a keyed sign-out is retried: the retry must not be told the
    session it ended itself is unknown (which the session checker would call vanished)."""
    client = app_client(session_store=store, **({"redis_url": request.getfixturevalue("redis_url")}
                                                if store == "redis" else {}))
    sign_in(client)
    add(client, "tea", "r1:ana:1")
    first = client.delete("/session", headers={"Idempotency-Key": "r1:ana:2"})
    assert first.status_code == 200 and first.get_json()["replayed"] is False
    retry = client.delete("/session", headers={"Idempotency-Key": "r1:ana:2"})
    assert retry.status_code == 200 and retry.get_json()["replayed"] is True, retry.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "signed out" in one_line_error(client.get("/cart"), 401)
    assert "signed out" in one_line_error(client.delete("/session", headers={"Idempotency-Key": "r1:ana:3"}), 401)


@pytest.mark.fast
def test_a_cookie_signed_with_another_secret_is_refused():
    stranger = app_client(session_store="cookie", secret_key="another")
    sign_in(stranger)
    client = app_client(session_store="cookie")
    client.set_cookie("session", stranger.get_cookie("session").value)
    assert "unknown or expired" in one_line_error(client.get("/cart"), 401)
    client.set_cookie("session", "forged.nonsense")
    assert "unknown or expired" in one_line_error(add(client, "tea", "r1:ana:1"), 401)


@pytest.mark.fast
def test_an_expired_cookie_is_refused():
    client = app_client(session_store="cookie", session_lifetime=1)
    sign_in(client)
    time.sleep(2.5)  # itsdangerous stamps whole seconds
    assert "unknown or expired" in one_line_error(client.get("/cart"), 401)


@pytest.mark.fast
def test_the_memory_store_is_unknown_to_another_process():
    one, other = app_client(session_store="memory"), app_client(session_store="memory")
    sign_in(one)
    add(one, "tea", "r1:ana:1")
    assert one.get("/cart").get_json()["cart"] == ["tea"]
    other.set_cookie("session", one.get_cookie("session").value)
    assert "unknown or expired" in one_line_error(other.get("/cart"), 401)


@pytest.mark.fast
@pytest.mark.parametrize("body", [None, {}, {"visitor": ""}, {"visitor": "a b"}, {"visitor": 7}, ["ana"]])
def test_a_bad_sign_in_is_a_400(body):
    assert "visitor" in one_line_error(app_client(session_store="cookie").post("/session", json=body), 400)


@pytest.mark.fast
def test_a_dead_session_store_is_a_503_not_a_traceback():
    client = app_client()  # SESSION_STORE=redis on a port nothing listens on
    assert one_line_error(client.post("/session", json={"visitor": "ana"}), 503).startswith("backing service")
    client.set_cookie("session", "a" * 43)
    assert one_line_error(client.get("/cart"), 503).startswith("backing service")


@pytest.mark.fast
def test_cookie_store_without_a_secret_does_not_start():
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Config.from_env({"SESSION_STORE": "cookie"})


@pytest.mark.fast
def test_a_kept_scratch_file_is_known_only_to_its_own_process():
    one, other = app_client(scratch="keep"), app_client(scratch="keep")
    posted = one.post("/uploads", data=NUMBERS, headers={"Idempotency-Key": "r1:u:1"}).get_json()
    assert posted["sum"] == 46 and posted["id"] == upload_id("r1:u:1")
    assert one.get(f"/uploads/{posted['id']}").get_json()["sum"] == 46
    assert "no upload" in one_line_error(other.get(f"/uploads/{posted['id']}"), 404)


@pytest.mark.fast
@pytest.mark.parametrize("path, status", [("/uploads/nothex", 400), ("/uploads/" + "A" * 32, 400), ("/uploads/", 404),
                                          ("/uploads/" + "0" * 32, 404)])
def test_a_missing_or_malformed_upload_id(path, status):
    one_line_error(app_client(scratch="keep").get(path), status)


@pytest.mark.fast
@pytest.mark.parametrize("body", [b"", b"1 two 3", b"\xff\xfe"])
def test_an_upload_that_is_not_integers_is_a_400(body):
    one_line_error(app_client(scratch="keep").post("/uploads", data=body), 400)


@pytest.mark.fast
def test_an_upload_over_the_limit_is_a_413_before_it_is_read():
    client = app_client(scratch="keep", upload_max_bytes=100)
    reason = one_line_error(client.post("/uploads", data=b"1 " * 100), 413)
    assert "UPLOAD_MAX_BYTES" in reason


@pytest.mark.fast
def test_a_dead_result_store_is_a_503():
    assert one_line_error(app_client().post("/uploads", data=NUMBERS), 503).startswith("backing service")


def test_redis_sessions_and_uploads_are_shared_by_every_process(redis_url, tmp_path):
    live = replace(DEAD, redis_url=redis_url, scratch_dir=str(tmp_path / "scratch"))
    one, other = app_client(live), app_client(live)
    sign_in(one)
    add(one, "tea", "r1:ana:1")
    other.set_cookie("session", one.get_cookie("session").value)
    assert add(other, "tea", "r1:ana:1").get_json()["replayed"] is True
    assert other.get("/cart").get_json()["cart"] == ["tea"]
    other.set_cookie("session", "b" * 43)  # a session id no store knows
    assert "unknown or expired" in one_line_error(other.get("/cart"), 401)

    chunked = b"7 " * 700_000 + b"12345"  # numbers cut across the 256 KiB chunks
    posted = one.post("/uploads", data=chunked, headers={"Idempotency-Key": "r1:u:1"}).get_json()
    assert posted["sum"] == 7 * 700_000 + 12345 and posted["bytes"] == len(chunked)
    got = other.get(f"/uploads/{posted['id']}").get_json()
    assert (got["sum"], got["sha256"]) == (posted["sum"], posted["sha256"])
    again = other.post("/uploads", data=b"9", headers={"Idempotency-Key": "r1:u:1"}).get_json()
    assert again["replayed"] is True and again["sum"] == posted["sum"]
    assert [name for _, _, names in os.walk(tmp_path / "scratch") for name in names] == []
