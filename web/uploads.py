"""Uploads: a file worked on in a single-request scratch file; only its result is kept, in Redis.

    $ seq 1 1000000 > numbers.txt
    $ curl -s -X POST -H 'Idempotency-Key: r1:u1:1' --data-binary @numbers.txt http://127.0.0.1:8000/uploads
    {"bytes": 6888896, "id": "…", "replayed": false, "served_by": {...}, "sha256": "…", "sum": 500000500000}
    $ curl -s http://127.0.0.1:8000/uploads/<id>        # on any instance, after any restart

An upload is whitespace-separated integers, sent as the raw body or as a
multipart ``file`` field, up to ``UPLOAD_MAX_BYTES`` (413 before it is read
when Content-Length says more, and as soon as a chunked body goes over). The
body is streamed in chunks to a temporary file in this process's scratch
folder, the file is read back for its sum and SHA-256, the result goes to
Redis and the file is deleted before the answer: the seed's "single
transaction cache". With an ``Idempotency-Key`` the id is derived from the key
(``common.schema.upload_id``), so a retry names the same upload and the first
result stays.

``SCRATCH=keep`` is wrong on purpose: the file stays in the scratch folder,
nothing goes to Redis, and ``GET`` works the result out from the file. Each
process's scratch folder is its own and starts empty, as a dyno's or a
container's file system does, so another process, or this one restarted,
answers 404. A process removes its folder as it exits; the folders of processes
killed outright are removed by the next web process to start with the same
scratch folder base (``sweep``).
"""
import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile

from flask import Blueprint, abort, jsonify, request

from web import BadRequest, idempotency_key
from common.schema import upload_id, upload_result

CHUNK = 1 << 18  # bytes read, written and parsed at a time: memory stays at a few chunks whatever the size
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
SCRATCH_PREFIX = "factor6-scratch-"  # + instance-pid-random: one process's scratch folder
SCRATCH_NAME = re.compile(rf"{SCRATCH_PREFIX}.*-(\d+)-[^-]+")


def scratch_folder(config):
    """This process's own scratch folder, empty at start and removed when the process exits; the folders of
    processes that are gone without exiting (SIGKILL runs no exit handler) are removed first."""
    base = config.scratch_dir or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    sweep(base)
    folder = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{config.instance}-{os.getpid()}-", dir=base)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def sweep(base):
    """Remove the scratch folders in ``base`` whose process is gone.

    >>> import pathlib; base = pathlib.Path(tempfile.mkdtemp())
    >>> (base / f"{SCRATCH_PREFIX}web.1-{os.getpid()}-live").mkdir(); (base / f"{SCRATCH_PREFIX}web.1-0-dead").mkdir()
    >>> sweep(base); sorted(p.name.split("-")[-1] for p in base.iterdir())
    ['live']
    """
    for entry in os.scandir(base):
        owner = SCRATCH_NAME.fullmatch(entry.name)
        if owner and entry.is_dir(follow_symlinks=False) and not alive(int(owner[1])):
            shutil.rmtree(entry.path, ignore_errors=True)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    return pid > 0  # 0 names this process's group, not a process


def receive(stream, folder):
    """Stream the body into a new file in ``folder``; its path. Never more than one chunk in memory."""
    fd, path = tempfile.mkstemp(dir=folder, suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as file:
            while chunk := stream.read(CHUNK):
                file.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


def work_out(path):
    """The result of the file at ``path``: its size, the sum of its integers and its SHA-256."""
    digest, total, size, carry = hashlib.sha256(), 0, 0, b""
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            tokens = (carry + chunk).split()
            # A number cut by the chunk's end is finished by the next chunk.
            carry = tokens.pop() if tokens and not chunk[-1:].isspace() else b""
            total += sum_of(tokens)
    total += sum_of([carry] if carry else [])
    if not size:
        raise BadRequest("the upload is empty: send whitespace-separated integers")
    return {"bytes": size, "sum": total, "sha256": digest.hexdigest()}


def sum_of(tokens):
    try:
        return sum(map(int, tokens))
    except ValueError:
        raise BadRequest("the upload must be whitespace-separated integers") from None


def uploads_blueprint(config, client):
    bp = Blueprint("uploads", __name__)
    folder = scratch_folder(config)
    keep = config.scratch == "keep"

    def answer(upload, result, status=200, **fields):
        return jsonify(id=upload, **result, **fields,
                       served_by={"instance": config.instance, "pid": os.getpid()}), status

    @bp.post("/uploads")
    def post_upload():
        key = idempotency_key()
        if request.content_length is not None and request.content_length > config.upload_max_bytes:
            abort(413, f"an upload may have at most {config.upload_max_bytes} bytes (UPLOAD_MAX_BYTES)")
        upload = upload_id(key) if key else os.urandom(16).hex()
        if not keep and (stored := client.get(upload_result(upload))):
            return answer(upload, json.loads(stored), replayed=True)
        # multipart: werkzeug has spooled the part already; a raw body is read here, chunk by chunk.
        part = request.files.get("file") if request.mimetype == "multipart/form-data" else None
        path = receive(part.stream if part else request.stream, folder)
        try:
            result = work_out(path)
            if keep:
                os.replace(path, os.path.join(folder, upload))  # the anti-pattern: the file outlives the request
                return answer(upload, result, replayed=False)
            client.set(upload_result(upload), json.dumps(result), ex=config.idempotency_ttl, nx=True)
        finally:
            if os.path.exists(path):  # kept or not, no .upload file outlives the request
                os.unlink(path)  # before the answer: nothing is left for a later request to lean on
        return answer(upload, json.loads(client.get(upload_result(upload))), replayed=False)

    @bp.get("/uploads/<upload>")
    def get_upload(upload):
        if not UPLOAD_ID.fullmatch(upload):
            raise BadRequest("an upload id is 32 lowercase hex digits")
        if keep:
            path = os.path.join(folder, upload)
            if os.path.exists(path):
                return answer(upload, work_out(path))
        elif stored := client.get(upload_result(upload)):
            return answer(upload, json.loads(stored))
        return jsonify(error=f"no upload {upload}"), 404

    return bp
