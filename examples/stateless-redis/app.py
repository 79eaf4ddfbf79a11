"""Records in Redis: any instance answers for any record, before and after any restart."""
import os

import redis
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
store = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


@app.get("/")
def ready():
    store.ping()
    return "ok\n"


@app.post("/posts")
def create():
    title = (request.get_json(silent=True) or {}).get("title")
    if not isinstance(title, str):
        abort(400)
    post = store.incr("example:posts:last")  # ids come from the shared store, so no two instances reuse one
    store.hset(f"example:post:{post}", mapping={"title": title})
    return jsonify(id=post, title=title), 201


@app.get("/posts/<int:post>")
def show(post):
    title = store.hget(f"example:post:{post}", "title")
    if title is None:
        abort(404)
    return jsonify(id=post, title=title)
