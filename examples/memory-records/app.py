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
    with lock:
        post = next(ids)  # every instance counts from 1: two writes get the same id
        posts[post] = request.get_json(force=True)
    return jsonify({**posts[post], "id": post}), 201


@app.get("/posts/<int:post>")
def show(post):
    if post not in posts:
        abort(404)
    return jsonify({**posts[post], "id": post})
