"""Real redis, web, proxy and honcho processes on free ports, each torn down as a whole tree; for tests and benchmarks.

    with Processes(log_dir=workdir) as procs:          # every process logs to workdir/<name>.log
        redis_url = procs.redis(workdir / "redis").url
        web = procs.web(redis_url, name="web.1", WEB_WORKERS=1)
        proxy = procs.proxy(PROXY_BACKENDS=web.address)
        requests.post(proxy.url + "/hits")
        web.workers                                    # the gunicorn master's worker processes
    # here every process started is gone, also when the block raised

``start`` runs any command in a session of its own, so that its whole tree can
be found and ended (a FrontDoor's nginx, a formation's honcho); ``process_env``
is the environment they get here: this Python's commands first on PATH, no
inherited ``REDIS_URL``. A ``Processes`` start returns once the process
answers, and fails at once, naming its log, when it exits first. Cleanup
SIGKILLs each tree (scaler.processes), so nothing outlives the block. Without
``log_dir`` (or a ``log_path``) output is discarded.
"""
import os
import subprocess
import sys

import psutil
import redis
import requests

from bench.paths import BIN, ROOT
from common.settings import WEB_WORKERS, number
from scaler.processes import free_port, honcho_base_port, kill_tree, wait_until


def process_env(**overrides):
    """This environment, this Python's commands first on PATH, no inherited ``REDIS_URL``, then ``overrides``."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("REDIS_URL", None)
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def start(args, env=None, log_path=None, cwd=ROOT, **options):
    """Popen ``args`` in a session of its own, so that its tree can be found and ended whole; output to
    ``log_path`` (else discarded); ``env`` None inherits this one; ``options`` go to Popen (``preexec_fn``...)."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(list(map(str, args)), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **options)
    finally:
        if log_path:
            out.close()  # the child holds its own copy


class Launched:
    """One started process tree: its Popen, its port, and its ``address`` (127.0.0.1:port) and ``url``."""

    def __init__(self, popen, port, url):
        self.popen, self.port, self.url = popen, port, url
        self.address = f"127.0.0.1:{port}"

    @property
    def workers(self):
        return psutil.Process(self.popen.pid).children()

    def kill(self):
        kill_tree(self.popen.pid)
        self.popen.wait()


class Processes:
    """The processes one test or benchmark started; leaving the ``with`` block (or ``stop_all``) kills them all."""

    def __init__(self, log_dir=None):
        self.log_dir = log_dir
        self.started = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_all()

    def log_path(self, name):
        return self.log_dir / f"{name}.log" if self.log_dir else None

    def spawn(self, args, env, log_path=None, cwd=ROOT):
        return self.keep(start(args, env, log_path, cwd))

    def keep(self, popen):
        """Also kill ``popen``'s tree (started elsewhere, e.g. a FrontDoor) on the way out."""
        self.started.append(popen)
        return popen

    def stop_all(self):
        for popen in reversed(self.started):
            kill_tree(popen.pid)
            popen.wait()
        self.started.clear()

    def ready(self, popen, answers, what, log_path):
        """Wait for ``answers()``; a process that exits first ends the wait at once."""
        def still_running():
            if popen.poll() is not None:
                raise RuntimeError(f"{what} exited with {popen.returncode}; see {log_path or 'its output'}")

        wait_until(answers, what=what, abort=still_running)

    def redis(self, data_dir, port=None, name="redis"):
        """A real redis-server through scripts/redis-server; restart it by passing the same port."""
        port = port or free_port()
        log_path = self.log_path(name)
        popen = self.spawn([str(ROOT / "scripts/redis-server")], process_env(PORT_REDIS=port, REDIS_DATA=data_dir),
                           log_path)
        server = Launched(popen, port, f"redis://127.0.0.1:{port}/0")
        self.ready(popen, lambda: redis.Redis.from_url(server.url).ping(), f"redis on {port}", log_path)
        return server

    def web(self, redis_url, name="web.1", port=None, log_path=None, **env):
        """A gunicorn web instance (``web/gunicorn_conf.py``), once ``/healthz`` answers and every one of its
        WEB_WORKERS workers has been forked (on a loaded machine the last comes well after the first answers);
        ``env`` on top."""
        port = port or free_port()
        log_path = log_path or self.log_path(name)
        environment = process_env(PORT=port, REDIS_URL=redis_url, HONCHO_PROCESS_NAME=name, **env)
        workers = number(environment, "WEB_WORKERS", WEB_WORKERS, least=1)
        popen = self.spawn([str(BIN / "gunicorn"), "-c", "web/gunicorn_conf.py", "web:create_app()"], environment,
                           log_path)
        web = Launched(popen, port, f"http://127.0.0.1:{port}")

        def answers():
            return requests.get(web.url + "/healthz", timeout=1).ok and len(web.workers) == workers

        self.ready(popen, answers, f"{name} on {port} with {workers} workers", log_path)
        return web

    def proxy(self, redis_url=None, name="proxy", log_path=None, command=(sys.executable, "-m", "proxy"), cwd=ROOT,
              **env):
        """``python -m proxy`` (or ``command``, run in ``cwd``) on a free port, once ``/_proxy/metrics`` answers."""
        port = free_port()
        if redis_url:
            env["REDIS_URL"] = redis_url
        log_path = log_path or self.log_path(name)
        popen = self.spawn(list(command), process_env(PROXY_PORT=port, **env), log_path, cwd)
        proxy = Launched(popen, port, f"http://127.0.0.1:{port}")
        self.ready(popen, lambda: requests.get(proxy.url + "/_proxy/metrics", timeout=1).ok, f"{name} on {port}",
                   log_path)
        return proxy

    def honcho(self, concurrency, env, log_path, processes=()):
        """``honcho start`` from the repo's Procfile; PORT, the base port, is free ports ahead."""
        base = honcho_base_port()
        args = [str(BIN / "honcho"), "start", "-p", str(base), "-c", concurrency, *processes]
        return self.spawn(args, process_env(**env), log_path)
