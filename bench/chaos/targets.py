"""How the chaos monkey finds what it may signal: registered instances whose gunicorn master runs here.

    master = local_master(instance)     # a psutil.Process, or None when it is not ours to signal
    healthz_pid("127.0.0.1:5101")       # the worker pid that answered GET /healthz, or None

An instance counts only if its registered master runs on this host, is
gunicorn and listens on the registered port: an entry outlives its process by
up to its TTL, and the pid may by then belong to anything.
"""
import http.client
import json
import urllib.request

import psutil


def local_master(instance):
    """The instance's master as a psutil.Process when it is on this host, gunicorn, and bound to the
    registered port; None otherwise."""
    try:
        port = int(instance.address.rpartition(":")[2])
        if not isinstance(instance.master, int) or instance.master <= 0:
            return None
        master = psutil.Process(instance.master)
        is_gunicorn = any("gunicorn" in part for part in master.cmdline())
        return master if is_gunicorn and serves_port(master, port) else None
    except (psutil.Error, ValueError):
        return None


def serves_port(master, port):
    """True when the master binds ``port``: its ``PORT`` (what web/gunicorn_conf.py binds) when set, read from
    /proc at once; else its socket table, which costs a scan of every socket and held the schedule back."""
    given = master.environ().get("PORT")
    if given is not None:
        return given == str(port)
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in master.net_connections("tcp"))


def healthz_pid(address, timeout=1.0):
    """The pid of the worker that answered ``GET /healthz`` at address, or None."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a probe of this instance, never via http_proxy
    try:
        with direct.open(f"http://{address}/healthz", timeout=timeout) as response:
            return json.load(response)["served_by"]["pid"]
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
        return None
