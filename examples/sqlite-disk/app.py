"""Records in SQLite on the instance's local disk: wrong on purpose. A platform gives each instance its own disk,
and a new one at each restart."""
import sqlite3

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
DATABASE = "records.db"  # in the working directory: this instance's disk, nobody else's


def database():
    connection = sqlite3.connect(DATABASE, timeout=10)
    connection.execute("CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT)")
    return connection


@app.get("/")
def ready():
    return "ok\n"


@app.post("/posts")
def create():
    title = request.form.get("title")
    if not title:
        abort(400)
    with database() as connection:
        post = connection.execute("INSERT INTO posts (title) VALUES (?)", (title,)).lastrowid
    return jsonify(id=post, title=title), 201


@app.get("/posts/<int:post>")
def show(post):
    with database() as connection:
        row = connection.execute("SELECT title FROM posts WHERE id = ?", (post,)).fetchone()
    if row is None:
        abort(404)
    return jsonify(id=post, title=row[0])
