"""Real processes for tests: free ports, readiness waits, and cleanup of whole process trees.

    with Processes() as procs:
        redis_url = procs.redis(tmp_path).url
        web = procs.web(redis_url, name="web.1")
        requests.post(web.url + "/hits")

Every process starts in its own session, and cleanup kills each tree found
through psutil, so nothing outlives a test, also when the test fails.
"""
import os
import subprocess
import sys

import psutil
import redis
import requests

from bench.paths import BIN as VENV_BIN
from bench.paths import ROOT
from scaler.processes import free_port, honcho_base_port, kill_tree, wait_until  # noqa: F401 - tests import them from here


def process_env(**overrides):
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("REDIS_URL", None)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class RedisServer:
    def __init__(self, popen, port):
        self.popen, self.port = popen, port
        self.url = f"redis://127.0.0.1:{port}/0"

    def kill(self):
        kill_tree(self.popen.pid)
        self.popen.wait()


class Web:
    def __init__(self, popen, port):
        self.popen, self.port = popen, port
        self.url = f"http://127.0.0.1:{port}"
        self.address = f"127.0.0.1:{port}"

    @property
    def workers(self):
        return psutil.Process(self.popen.pid).children()


class Processes:
    def __init__(self):
        self.started = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_all()

    def spawn(self, args, env, log_path=None):
        out = open(log_path, "wb") if log_path else subprocess.DEVNULL
        popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.started.append(popen)
        return popen

    def stop_all(self):
        for popen in reversed(self.started):
            kill_tree(popen.pid)
            popen.wait()
        self.started.clear()

    def redis(self, data_dir, port=None):
        """A real redis-server through scripts/redis-server; restart it by passing the same port."""
        port = port or free_port()
        popen = self.spawn([str(ROOT / "scripts/redis-server")],
                           process_env(PORT_REDIS=port, REDIS_DATA=data_dir))
        server = RedisServer(popen, port)
        wait_until(lambda: redis.Redis.from_url(server.url).ping(), what=f"redis on {port}")
        return server

    def web(self, redis_url, name="web.1", port=None, log_path=None, **env):
        port = port or free_port()
        popen = self.spawn(
            [str(VENV_BIN / "gunicorn"), "-c", "web/gunicorn_conf.py", "web:create_app()"],
            process_env(PORT=port, REDIS_URL=redis_url, HONCHO_PROCESS_NAME=name, **env),
            log_path,
        )
        web = Web(popen, port)
        wait_until(lambda: requests.get(web.url + "/healthz", timeout=1).ok, what=f"{name} on {port}")
        return web

    def proxy(self, redis_url=None, log_path=None, **env):
        """``python -m proxy`` on a free port, once ``/_proxy/metrics`` answers; a Web for its url and popen."""
        port = free_port()
        if redis_url:
            env["REDIS_URL"] = redis_url
        popen = self.spawn([sys.executable, "-m", "proxy"], process_env(PROXY_PORT=port, **env), log_path)
        proxy = Web(popen, port)
        wait_until(lambda: popen.poll() is not None or requests.get(proxy.url + "/_proxy/metrics", timeout=1).ok,
                   what=f"proxy on {port}")
        if popen.poll() is not None:
            raise RuntimeError(f"proxy exited with {popen.returncode}; see {log_path}")
        return proxy

    def honcho(self, concurrency, env, log_path, processes=()):
        """``honcho start`` from the repo's Procfile; PORT, the base port, is free ports ahead."""
        base = honcho_base_port()
        args = [str(VENV_BIN / "honcho"), "start", "-p", str(base), "-c", concurrency, *processes]
        return self.spawn(args, process_env(**env), log_path)
