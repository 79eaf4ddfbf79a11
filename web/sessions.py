"""A visitor's session and cart: sign in, add items exactly once, read the cart, sign out.

    $ curl -si -c jar -X POST -H 'Content-Type: application/json' -d '{"visitor": "ana"}' http://127.0.0.1:8000/session
    $ curl -si -b jar -c jar -X POST -H 'Idempotency-Key: r1:ana:1' -d '{"item": "tea"}' \\
          -H 'Content-Type: application/json' http://127.0.0.1:8000/cart/items
    {"cart": ["tea"], "item": "tea", "replayed": false, "served_by": {...}, "visitor": "ana"}
    $ curl -s -b jar http://127.0.0.1:8000/cart          # on any instance
    $ curl -s -b jar -X DELETE http://127.0.0.1:8000/session

The cart is the session's state, so where the session lives decides everything
(``SESSION_STORE``):

- ``redis`` (default): Flask-Session's Redis backend keeps the session under
  ``factor6:session:<id>``; the cookie carries only the random id.
- ``cookie``: Flask's own signed cookie carries the whole session, so no process
  keeps it; every instance must share ``SECRET_KEY`` to read it.
- ``memory``: Flask-Session's cachelib backend over a ``SimpleCache``, a dict in
  the process. Wrong on purpose: another process, or this one restarted, does not
  know the visitor.

Each add's ``Idempotency-Key`` is remembered in the session with its item, so a
retry (the proxy's or the client's, on any instance) adds nothing twice; a keyed
sign-out leaves the session marked signed out by its key, so its retry is
answered as the first try was (``"replayed": true``), not with a 401. A
cookie that names no live session (forged, expired, or from a store that lost
it) gets 401 with a one-line reason; so does a request without one.
"""
import re
from datetime import timedelta

import redis
from cachelib import SimpleCache
from flask import Blueprint, current_app, jsonify, request, session
from flask_session import Session
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import InternalServerError

from web import BadRequest, idempotency_key, replayed, served_by
from common.schema import SESSION_PREFIX

NAME = re.compile(r"[A-Za-z0-9._:#-]{1,128}")
CART_MAX = 100  # items per cart; the signed cookie must stay under browsers' 4 KB


class Unauthorized(Exception):
    """A cart request without a live session: 401 and the reason."""


def configure_store(app, config):
    """Set the app's session interface for ``config.session_store``."""
    app.config.update(PERMANENT_SESSION_LIFETIME=timedelta(seconds=config.session_lifetime),
                      SESSION_PERMANENT=True, SESSION_KEY_PREFIX=SESSION_PREFIX)
    if config.secret_key:
        app.secret_key = config.secret_key
    if config.session_store == "redis":
        # Flask-Session stores msgpack bytes: this client must not decode replies, unlike common.redis_client's.
        client = redis.Redis.from_url(config.redis_url, retry=Retry(NoBackoff(), 0),
                                      socket_connect_timeout=1, socket_timeout=5)
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=client)
    elif config.session_store == "memory":
        app.config.update(SESSION_TYPE="cachelib",
                          SESSION_CACHELIB=SimpleCache(threshold=1_000_000, default_timeout=config.session_lifetime))
    if config.session_store != "cookie":  # cookie: Flask's default SecureCookieSessionInterface
        Session(app)


def json_field(name):
    data = request.get_json(silent=True)
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise BadRequest(f'send JSON {{"{name}": "..."}}, 1-128 characters of [A-Za-z0-9._:#-]')
    return value


def signed_in():
    if "visitor" in session:
        return session["visitor"]
    if "signed_out" in session:
        raise Unauthorized("signed out: POST /session to sign in again")
    if request.cookies.get(current_app.config["SESSION_COOKIE_NAME"]):
        raise Unauthorized("session unknown or expired (forged, timed out, or lost by its store): sign in again")
    raise Unauthorized("not signed in: POST /session first")


def sessions_blueprint(config):
    """The session and cart routes, and the errors they answer with."""
    bp = Blueprint("sessions", __name__)

    def answer(**fields):
        return jsonify(**fields, served_by=served_by(config))

    def replay(**fields):
        return replayed(answer(**fields, replayed=True))

    @bp.app_errorhandler(Unauthorized)
    def unauthorized(exc):
        return jsonify(error=str(exc)), 401

    @bp.app_errorhandler(InternalServerError)
    def store_down(exc):
        # The session store is read before the route runs and written after it, outside the
        # route's own error handling: Flask hands a failure there to this handler.
        if isinstance(exc.original_exception, redis.RedisError):
            return jsonify(error=f"backing service unavailable: {type(exc.original_exception).__name__}"), 503
        return jsonify(error=f"{exc.code} {exc.name}: {exc.description}"), 500

    @bp.post("/session")
    def sign_in():
        visitor = json_field("visitor")
        session.clear()
        session.update(visitor=visitor, cart=[], keys=[])
        return answer(visitor=visitor, cart=[])

    @bp.delete("/session")
    def sign_out():
        key = idempotency_key()
        if key and session.get("signed_out_by") == key:  # a retry of this very sign-out, applied already
            return replay(visitor=session["signed_out"], signed_out=True)
        visitor = signed_in()
        session.clear()
        if key:
            # Marked, not emptied: a retry whose first answer died with its worker finds its own sign-out
            # and gets that answer again, not a 401 for the session it ended itself.
            session.update(signed_out=visitor, signed_out_by=key)
        return answer(visitor=visitor, signed_out=True, replayed=False)

    @bp.get("/cart")
    def read_cart():
        return answer(visitor=signed_in(), cart=session["cart"])

    @bp.post("/cart/items")
    def add_item():
        visitor = signed_in()
        item, key = json_field("item"), idempotency_key()
        cart, keys = session["cart"], session["keys"]
        if key and key in keys:
            return replay(visitor=visitor, item=cart[keys.index(key)], cart=cart)
        if len(cart) >= CART_MAX:
            raise BadRequest(f"the cart is full ({CART_MAX} items)")
        # New lists, assigned: the session notices the change and is saved (or the cookie re-signed).
        session["cart"], session["keys"] = cart + [item], keys + [key or ""]
        return answer(visitor=visitor, item=item, cart=session["cart"], replayed=False)

    return bp
