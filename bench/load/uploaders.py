"""The upload workload's Locust user: posts files of integers, then reads each back later, through any instance.

    $ locust -f bench/locustfile.py --workload upload --upload-size 10M --headless -u 4 -t 60s --host ...

Each upload is ``--upload-size`` bytes of random integers, one per line, the
same for every upload of a process, then a random number of its own, so every
upload has a sum and SHA-256 of its own, worked out without reading it again.
The invoke (``upload.post``) holds the upload's id (``common.schema.upload_id`` of
its key, so one with an unknown outcome can be looked for too) and that
result; each upload is read back (``upload.get``) at the user's next turn at
least ``READ_AFTER`` seconds later, and the rest when the user stops, for
bench/verdict/uploads.py.
"""
import collections
import hashlib
import random
import re
import time

from locust import constant, task

from bench.load.tries import Retryable, call
from bench.load.users import JournaledUser
from common.schema import upload_id

POST, GET = "upload.post", "upload.get"
READ_AFTER = 1.0
SIZE = re.compile(r"(\d+)([KM]?)", re.IGNORECASE)


def parse_size(text):
    """Bytes of ``1048576``, ``512K`` or ``10M``."""
    match = SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size such as 1048576, 512K or 10M")
    return int(match.group(1)) * {"": 1, "K": 1024, "M": 1024 * 1024}[match.group(2).upper()]


class Blob:
    """``size`` bytes of integers; its sum and the SHA-256 state after it, so any suffix costs only itself."""

    def __init__(self, size, seed=0):
        numbers = random.Random(seed).choices(range(1_000_000), k=max(1, size // 7))
        self.data = ("\n".join(map(str, numbers)) + "\n").encode()
        self.sum = sum(numbers)
        self.digest = hashlib.sha256(self.data)

    def upload(self, extra):
        """The body ending in ``extra``, and its sum and SHA-256."""
        suffix = f"{extra}\n".encode()
        digest = self.digest.copy()
        digest.update(suffix)
        return self.data + suffix, self.sum + extra, digest.hexdigest()


class UploadUser(JournaledUser):
    workload = "upload"
    wait_time = constant(0.05)
    _blobs = {}  # size -> Blob: made once per process, shared by its users

    def on_start(self):
        super().on_start()
        size = parse_size(self.environment.parsed_options.upload_size)
        self.blob = self._blobs.get(size) or self._blobs.setdefault(size, Blob(size))
        self.unread = collections.deque()  # (posted at, upload id)

    def journaled(self, name, asked, method, path, label, **request):
        journal = self.journal
        key = asked.pop("key", None) or self.next_key()
        journal.invoke(key, op=name, **asked)
        try:
            answer = call(self, method, path, label, key=key, **request)
        except Retryable:
            journal.complete(key, "info", op=name)
            return
        if answer.ok:
            result = {"upload": answer.data.get("id"), "sum": answer.data.get("sum"), "sha256": answer.data.get("sha256")}
        else:
            result = {"status": answer.status, "error": answer.error}
        journal.complete(key, "ok" if answer.ok else "fail", op=name, instance=answer.instance, **result)

    @task
    def upload(self):
        key = self.next_key()
        body, total, sha = self.blob.upload(random.getrandbits(62))
        self.journaled(POST, {"key": key, "upload": upload_id(key), "sum": total, "sha256": sha}, "POST", "/uploads",
                       "POST /uploads", data=body, headers={"Content-Type": "application/octet-stream"})
        self.unread.append((time.monotonic(), upload_id(key)))
        while self.unread and time.monotonic() - self.unread[0][0] >= READ_AFTER:
            self.read_back(self.unread.popleft()[1])

    def read_back(self, upload):
        self.journaled(GET, {"upload": upload}, "GET", f"/uploads/{upload}", "GET /uploads/<id>")

    def on_stop(self):
        while self.unread:
            self.read_back(self.unread.popleft()[1])
