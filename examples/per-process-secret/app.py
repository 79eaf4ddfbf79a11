"""Sessions in Flask's signed cookie, signed with a secret each process makes at start: wrong on purpose.
A cookie from one instance is refused by every other one ("logged out every other click")."""
import os

from flask import Flask, abort, jsonify, request, session

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY") or os.urandom(32)  # the fix: one SECRET_KEY for every instance


@app.get("/")
def ready():
    return "ok\n"


@app.post("/login")
def login():
    user = (request.get_json(silent=True) or {}).get("user")
    if not isinstance(user, str):
        abort(400)
    session["user"] = user
    return jsonify(user=user)


@app.get("/me")
def me():
    if "user" not in session:
        abort(401)
    return jsonify(user=session["user"])
