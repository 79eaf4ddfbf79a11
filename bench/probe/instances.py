"""Instances of a probed app, each a machine of its own: its own port, its own disk, its own /tmp and HOME.

    machines = Machines(app_dir, "exec gunicorn -b 127.0.0.1:$PORT app:app", env, logs=run / "logs")
    try:
        web1 = machines.start()          # web.1, once GET ready answers below 500
        machines.kill(web1)              # SIGKILL of its whole tree; web1.files: what it wrote, kept
        web4 = machines.start()          # a restart is a new process on a fresh disk, under a new name
    finally:
        machines.close()                 # every process ended, every disk and mount gone

As root (``isolation="mount"``) the command runs through ``unshare --mount``:
in a mount namespace of its own, an overlay over APP_DIR (its upper and work
folders on the instance's disk) and private ``/tmp`` and ``/var/tmp``, so the
app sees APP_DIR at its own path and writes land on the instance's disk.
Otherwise (``isolation="copy"``) the instance runs in a copy of APP_DIR (less
``.git`` and the run folder) with its own ``TMPDIR``. Either way ``HOME`` is the instance's own
(``/tmp/home`` in the namespace).
The namespace dies with its last process, so a kill leaves no mount behind,
and nothing an instance writes reaches APP_DIR. The command runs through
``sh -c``, as honcho runs a Procfile line, with ``PORT`` set; it must listen
on 127.0.0.1. The instance's files (``Instance.files``) are read from its disk
when it stops, before the disk is removed.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.harness.launch import start
from bench.packages import Missing, installed
from scaler.processes import free_port, kill_tree, stop_tree, wait_until

ISOLATIONS = ("auto", "mount", "copy")
LOG_TAIL = 15  # lines of an instance's log shown when it never became ready
STOP_GRACE = 5  # seconds a SIGTERM'd instance may take to drain before SIGKILL
TEMP_FOLDERS = ("/var/tmp", "/tmp")


class NeverReady(Exception):
    """An instance exited, or did not answer ready in time; the message ends with the last lines of its log."""


def mount_script(app, upper, work, private_temps, command, shared=()):
    """What ``unshare --mount`` runs: the overlay at the app's own path, the private temp folders, then the
    command as honcho runs it. What lives under /tmp or /var/tmp and must stay in sight is bound into the private
    folder at the same path: the app itself, and read-only the ``shared`` folders its command needs (the
    commands on its PATH, a virtual environment: a clone under /tmp runs its venv from there)."""
    q = shlex.quote
    lines = [f"mount -t overlay overlay -o {q(f'lowerdir={app},upperdir={upper},workdir={work}')} {q(str(app))}"]
    for folder, private in zip(TEMP_FOLDERS, private_temps):
        for kept, writable in ((app, True), *((path, False) for path in shared)):
            if Path(folder) in kept.parents and not (kept != app and app in (kept, *kept.parents)):
                inside = private / kept.relative_to(folder)
                lines += [f"mkdir -p {q(str(inside))}", f"mount --bind {q(str(kept))} {q(str(inside))}"]
                if not writable:
                    lines.append(f"mount -o remount,bind,ro {q(str(inside))}")
        lines.append(f"mount --rbind {q(str(private))} {folder}")
    return "set -e; " + "; ".join(lines + [f"cd {q(str(app))}", f"exec sh -c {q(command)}"])


def shared_folders(path_variable):
    """The folders of a PATH that lie under a temp folder, each a virtual environment's root where it is one."""
    folders = set()
    for entry in filter(None, path_variable.split(os.pathsep)):
        folder = Path(entry)
        if folder.is_dir() and any(Path(temp) in folder.parents for temp in TEMP_FOLDERS):
            folders.add(folder.parent if (folder.parent / "pyvenv.cfg").exists() else folder)
    return tuple(sorted(folders))


def isolation_mode(requested="auto", app_dir=None):
    """``mount`` where a mount namespace can be made (root, unshare, a path overlayfs accepts), else ``copy``."""
    if requested != "auto":
        return requested
    if os.geteuid() != 0 or (app_dir is not None and set(",:") & set(str(app_dir))):
        return "copy"
    try:
        installed("unshare", "util-linux")
    except Missing:
        return "copy"
    return "mount"


@dataclass
class Instance:
    """One process of the app on its own port and disk; ``files`` is filled in when it stops."""

    name: str
    port: int
    popen: subprocess.Popen
    disk: Path
    log: Path
    started: float = field(default_factory=time.time)
    ready_at: float | None = None
    stopped: float | None = None
    files: list[tuple[str, int]] = field(default_factory=list)  # (path as the app saw it, bytes)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self):
        return self.stopped is None and self.popen.poll() is None


def tail(path, lines=LOG_TAIL):
    try:
        with open(path, errors="replace") as file:
            return "".join(deque(file, lines)).rstrip()
    except OSError:
        return "(no log)"


def walk(folder, shown_as):
    """(path as the app saw it, bytes) of every file under ``folder``, ``shown_as`` standing for the folder."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            try:
                stat = path.lstat()
            except OSError:
                continue
            if stat.st_mode & 0o170000 == 0o020000 and stat.st_rdev == 0:  # an overlay whiteout: a deletion
                found.append((f"{shown_as}/{path.relative_to(folder)} (deleted)", 0))
            else:
                found.append((f"{shown_as}/{path.relative_to(folder)}", stat.st_size))
    return found


def changed_in_copy(copy, original):
    """(path, bytes) of the files of ``copy`` that are new or differ (size, mtime) from ``original``'s."""
    found = []
    for path, size in walk(copy, "."):
        relative = path[2:]
        try:
            before, after = Path(original, relative).stat(), Path(copy, relative).stat()
        except OSError:
            found.append((path, size))
            continue
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            found.append((path, size))
    return found


class Machines:
    """The app's instances: start (ready or NeverReady), kill, stop, close. Thread-safe; names never reused."""

    def __init__(self, app_dir, command, env, logs, process="web", ready="/", ready_timeout=60.0,
                 isolation="auto", abort=None):
        self.app_dir = Path(app_dir).resolve()
        self.command, self.env, self.logs, self.process = command, dict(env), Path(logs), process
        self.ready, self.ready_timeout, self.abort = ready, ready_timeout, abort
        self.isolation = isolation_mode(isolation, self.app_dir)
        self.disks = Path(tempfile.mkdtemp(prefix="factor6-probe-"))  # not under APP_DIR: overlayfs refuses that
        self.instances: list[Instance] = []
        self.started = 0  # instances ever started: the next one's number
        self.lock = threading.Lock()
        self.logs.mkdir(parents=True, exist_ok=True)

    def not_copied(self, folder, names):
        """What a copy of APP_DIR leaves out: ``.git``, and the run folder (where ``logs`` is) when it lies inside."""
        return [name for name in names if name == ".git" or Path(folder, name).resolve() == self.logs.parent.resolve()]

    def running(self):
        with self.lock:
            return [instance for instance in self.instances if instance.running]

    def _launch(self, name, port):
        disk = self.disks / name
        tmp, vartmp = disk / "tmp", disk / "var-tmp"
        for folder in (tmp / "home", vartmp, disk / "home"):
            folder.mkdir(parents=True)
        env = {**self.env, "PORT": str(port), "HOME": str(disk / "home"), "HONCHO_PROCESS_NAME": name}
        if self.isolation == "mount":
            upper, work = disk / "upper", disk / "work"
            upper.mkdir(), work.mkdir()
            env.pop("TMPDIR", None)  # /tmp is its own
            env.update(HOME="/tmp/home")  # the disk itself is out of sight under the private /tmp
            args = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    mount_script(self.app_dir, upper, work, (vartmp, tmp), self.command,
                                 shared_folders(env.get("PATH", "")))]
            cwd = self.app_dir
        else:
            cwd = disk / "app"
            shutil.copytree(self.app_dir, cwd, symlinks=True, ignore=self.not_copied)
            env.update(TMPDIR=str(tmp))
            args = ["sh", "-c", self.command]
        log = self.logs / f"{name}.log"
        return Instance(name, port, start(args, env=env, log_path=log, cwd=cwd), disk, log)

    def start(self):
        """A new instance on a fresh disk, returned once GET ``ready`` answers below 500."""
        with self.lock:
            self.started += 1
            name = f"{self.process}.{self.started}"
        instance = self._launch(name, free_port())
        with self.lock:
            self.instances.append(instance)

        def exited():
            if self.abort:
                self.abort()
            if instance.popen.poll() is not None:
                raise NeverReady(f"{name} exited with {instance.popen.returncode} before answering GET {self.ready};"
                                 f" the last lines of {instance.log}:\n{tail(instance.log)}")

        try:
            wait_until(lambda: requests.get(instance.url + self.ready, timeout=2).status_code < 500,
                       timeout=self.ready_timeout, interval=0.1, what=name, abort=exited)
        except TimeoutError:
            raise NeverReady(f"{name} did not answer GET {self.ready} below 500 within {self.ready_timeout:g}s;"
                             f" the last lines of {instance.log}:\n{tail(instance.log)}") from None
        instance.ready_at = time.time()
        return instance

    def kill(self, instance):
        """SIGKILL the instance's whole tree, as a crash does."""
        self._end(instance, kill_tree)

    def stop(self, instance):
        """SIGTERM, then SIGKILL after a grace: a scale-down or a platform restart."""
        self._end(instance, lambda pid: stop_tree(pid, grace=STOP_GRACE))

    def _end(self, instance, how):
        with self.lock:
            if instance.stopped is not None:
                return
            instance.stopped = time.time()
        how(instance.popen.pid)
        instance.popen.wait()
        instance.files = self.files_of(instance)
        shutil.rmtree(instance.disk, ignore_errors=True)

    def files_of(self, instance):
        disk = instance.disk
        if self.isolation == "mount":
            app = walk(disk / "upper", ".")
            temp = walk(disk / "tmp", "/tmp") + walk(disk / "var-tmp", "/var/tmp")
        else:
            app = changed_in_copy(disk / "app", self.app_dir)
            temp = walk(disk / "tmp", "$TMPDIR")
        return app + temp + walk(disk / "home", "~")

    def close(self):
        """End every instance still running (SIGKILL), keep what each wrote, remove every disk."""
        for instance in list(self.instances):
            self.kill(instance)
        shutil.rmtree(self.disks, ignore_errors=True)
