"""Records in a dictionary of the process: wrong on purpose. Another instance, or this one restarted, knows none of them."""
import itertools
import threading

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
posts, ids, lock = {}, itertools.count(1), threading.Lock()  # the state the sixth factor forbids


@app.get("/")
def ready():
    return "ok\n"


@app.post("/posts")
def create():
    title = (request.get_json(silent=True) or {}).get("title")
    if not isinstance(title, str):
        abort(400)
    with lock:
        post = next(ids)  # every instance counts from 1: two writes get the same id
        posts[post] = title
    return jsonify(id=post, title=title), 201


@app.get("/posts/<int:post>")
def show(post):
    if post not in posts:
        abort(404)
    return jsonify(id=post, title=posts[post])
