"""The web process type: a Flask hit counter that keeps no state between requests.

    $ REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -c web/gunicorn_conf.py 'web:create_app()'
    $ curl -X POST -H 'Idempotency-Key: run1:u1:1' http://127.0.0.1:8000/hits
    {"hits": 1, "replayed": false, "served_by": {"instance": "web.1", "pid": 4242}}

Every answer names its process (``X-Served-By``) and its formation (``X-Factor6-Formation``, web/identity.py).
Routes: ``GET /`` (the seed's page), ``POST /hits`` (the API), ``GET /hits``
(read only), ``GET /healthz`` (alive), ``GET /readyz`` (Redis answers);
a visitor's session and cart (web/sessions.py), uploads (web/uploads.py).
Everything a request needs lives in Redis; the app object holds only the
configuration and a client.
"""
import os
import re
import time

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from web.config import Config
from web.durability import Unconfirmed
from web.hits import make_counter
from web.identity import Identity
from common.redis_client import connect
from common.schema import FORMATION_HEADER

# The IETF draft's sf-string form ("...") or a bare token.
KEY_PATTERN = re.compile(r'"([A-Za-z0-9._:-]{1,255})"|([A-Za-z0-9._:-]{1,255})')


def redact(url):
    """The URL without a password, for logs."""
    return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", url)


class BadRequest(Exception):
    """A request we refuse with 400 and a one-line reason."""


def idempotency_key():
    values = request.headers.getlist("Idempotency-Key")
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("send one Idempotency-Key header, not several")
    match = KEY_PATTERN.fullmatch(values[0].strip())
    if not match:
        raise BadRequest("Idempotency-Key must be 1-255 characters of [A-Za-z0-9._:-], bare or in double quotes")
    return match.group(1) or match.group(2)


def served_by(config):
    """Which process answered: every JSON answer says so."""
    return {"instance": config.instance, "pid": os.getpid()}


def replayed(response):
    """Mark ``response`` as the stored answer to a key already applied, as every exactly-once route does."""
    response.headers["Idempotent-Replayed"] = "true"
    return response


def create_app(config=None):
    config = config or Config.from_env()
    app = Flask(__name__)
    client = connect(config.redis_url, timeout=config.redis_timeout)
    outage = {"since": None, "logged": 0.0}  # this process's view of a Redis outage, for its log only
    identity = Identity(config.formation, client)
    counter = make_counter(config.hit_mode, client, config.instance, config.idempotency_ttl, config.durability)
    app.config["MAX_CONTENT_LENGTH"] = config.upload_max_bytes
    from web.sessions import configure_store, sessions_blueprint  # they import this module's request helpers
    from web.uploads import uploads_blueprint

    configure_store(app, config)
    app.register_blueprint(sessions_blueprint(config))
    app.register_blueprint(uploads_blueprint(config, client))

    def hit():
        key = idempotency_key()
        if config.work_ms:
            time.sleep(config.work_ms / 1000)
        return counter.hit(key)

    @app.after_request
    def tag(response):
        response.headers["X-Served-By"] = f"{config.instance};pid={os.getpid()}"
        if identity.get():
            response.headers[FORMATION_HEADER] = identity.get()
        return response

    @app.errorhandler(BadRequest)
    def bad_request(exc):
        return jsonify(error=str(exc)), 400

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return jsonify(error=f"{exc.code} {exc.name}: {exc.description}"), exc.code

    @app.errorhandler(Unconfirmed)
    def unconfirmed(exc):
        # Applied on the primary, perhaps; not confirmed durable: never an acknowledgement (REDIS_DURABILITY).
        response = jsonify(error=str(exc), outcome="unknown")
        response.headers["Retry-After"] = "1"
        return response, 503

    @app.errorhandler(redis.RedisError)
    def backing_service_down(exc):
        # The process stays up; the next request reconnects by itself. One log line when an outage
        # starts, then one every 10 s while it lasts, rather than one per request.
        now = time.monotonic()
        if outage["since"] is None or now - outage["logged"] >= 10:
            app.logger.warning("redis at %s unavailable, answering 503 until it is back: %s: %s",
                               redact(config.redis_url), type(exc).__name__, exc)
            outage["since"] = outage["since"] or now
            outage["logged"] = now
        response = jsonify(error=f"backing service unavailable: {type(exc).__name__}")
        response.headers["Retry-After"] = "1"
        return response, 503

    @app.after_request
    def recovered(response):
        if outage["since"] is not None and response.status_code < 500 and request.endpoint != "healthz":
            app.logger.warning("redis reachable again after %.1fs", time.monotonic() - outage["since"])
            outage["since"] = None
        return response

    @app.get("/")
    def hello():
        return f"Hello World! {hit().number} times.\n"

    @app.post("/hits")
    def post_hit():
        result = hit()
        response = jsonify(hits=result.number, replayed=result.replayed, served_by=served_by(config))
        return replayed(response) if result.replayed else response

    @app.get("/hits")
    def get_hits():
        return jsonify(hits=counter.count(), served_by=served_by(config))

    @app.get("/healthz")
    def healthz():
        return jsonify(status="alive", served_by=served_by(config))

    @app.get("/readyz")
    def readyz():
        client.ping()  # a RedisError here becomes the 503 above
        return jsonify(status="ready", served_by=served_by(config))

    return app
