"""gunicorn settings for one web instance, and the hooks that keep it in the registry.

    $ PORT=5100 REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -c web/gunicorn_conf.py 'web:create_app()'

The master registers the instance once it listens and renews the entry; it
deregisters *before* draining on SIGTERM, so the proxy stops sending new work
while in-flight requests finish. gunicorn's own signals do the rest: TERM
graceful, QUIT/INT fast, HUP reload workers, TTIN/TTOU one worker more/less.
Bad settings (``HIT_MODE=atomc``, ``WEB_WORKERS=0``) end the master at
start-up with one line and exit status 1. Every log line names the instance (``[web.3:4242]``), so the instances the
scaler starts, whose output comes out under ``scaler.1`` in honcho's terminal,
can be told apart.
"""
import ipaddress
import os
import socket
import sys
import time

from gunicorn.glogging import Logger

from common.settings import WEB_WORKERS, formation_id, instance_name, number, port_problem, redis_url
from web.config import Config
from web.identity import IdentifiedRegistry, Identity
from common.redis_client import connect
from common.registry import Heartbeat


try:
    Config.from_env()  # HIT_MODE and the rest, checked once here rather than in every worker
    port = number(os.environ, "PORT", 8000, least=1)
    workers = number(os.environ, "WEB_WORKERS", WEB_WORKERS, least=1)
    threads = number(os.environ, "WEB_THREADS", 4, least=1)
    graceful_timeout = number(os.environ, "WEB_GRACEFUL_TIMEOUT", 10)
    timeout = number(os.environ, "WEB_TIMEOUT", 30, least=1)
    REGISTRY_TTL = number(os.environ, "REGISTRY_TTL", 3.0, least=0.1)
except ValueError as exc:
    # One line before the master forks, so no worker prints a traceback of it.
    sys.exit(f"web: {exc}")

bind = f"{os.environ.get('BIND_HOST', '127.0.0.1')}:{port}"
worker_class = "gthread"
keepalive = 5
# Several masters on one machine would fight over gunicorn's default control socket path.
control_socket_disable = True
proc_name = instance_name(os.environ)
accesslog = os.environ.get("WEB_ACCESS_LOG") or None


class NamedLogger(Logger):
    """gunicorn's log lines, each with the instance's name: the scaler's instances share its terminal."""

    error_fmt = f"%(asctime)s [{proc_name.replace('%', '%%')}:%(process)d] [%(levelname)s] %(message)s"


logger_class = NamedLogger


def advertised_host(bound):
    """What other hosts dial: ADVERTISE_HOST if set; for a wildcard bind (as in a container) the
    address this host's own name resolves to, e.g. the container's IP; else the bound address."""
    if os.environ.get("ADVERTISE_HOST"):
        return os.environ["ADVERTISE_HOST"]
    if ipaddress.ip_address(bound).is_unspecified:
        return socket.gethostbyname(socket.gethostname())
    return bound


def on_starting(server):
    """A port already taken ends the master at once with one line (gunicorn itself would retry for 5 s)."""
    if "GUNICORN_FD" not in os.environ:  # after USR2 the old master holds the port, on purpose
        problem = port_problem(bind.rpartition(":")[0], port, "PORT")
        if problem:
            sys.exit(f"web: {problem}")


def when_ready(server):
    host, port = server.LISTENERS[0].sock.getsockname()[:2]
    entry = {
        "name": instance_name(os.environ),
        "address": f"{advertised_host(host)}:{port}",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
    }
    client = connect(redis_url(os.environ))
    registry = IdentifiedRegistry(client, REGISTRY_TTL, Identity(formation_id(os.environ), client))
    server.heartbeat = Heartbeat(registry, entry, server.log).start()
    graceful_stop = server.handle_term

    def deregister_then_drain():
        server.heartbeat.stop()
        graceful_stop()

    # The arbiter looks its handlers up by name on the instance, so this wraps SIGTERM alone.
    server.handle_term = deregister_then_drain


def on_exit(server):
    if getattr(server, "heartbeat", None):
        server.heartbeat.stop()
