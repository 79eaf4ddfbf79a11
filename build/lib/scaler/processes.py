"""Whole process trees: free ports, readiness waits, cleanup; for the scaler, the harness and the tests.

    port = free_port()
    wait_until(lambda: requests.get(url).ok, timeout=15, what="the proxy", abort=check_still_running)
    kill_tree(honcho.pid)  # honcho, every instance master and every worker

honcho starts each process in a session of its own, so a process group kill
would miss them; the tree is collected through psutil before anything is
signalled, because a killed parent's children are re-parented and lost.
"""
import os
import random
import signal
import socket
import time
from pathlib import Path

import psutil


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def honcho_base_port(types=4, per_type=100):
    """A base port for ``honcho start -p``, which hands out base + 100 per process type + 1 per instance.

    Ports handed out one by one by the kernel (``free_port``) sit in the ephemeral range,
    where a later outgoing connection may take base + 101 before gunicorn binds it; so the
    block comes from below that range, and every port in it is checked free.
    """
    low = ephemeral_ports_start()
    rng = random.SystemRandom()
    for _ in range(100):
        base = rng.randrange(10000, low - types * per_type, per_type)
        if all(port_is_free(port) for kind in range(types) for port in range(base + kind * per_type,
                                                                           base + kind * per_type + 20)):
            return base
    raise RuntimeError("no free block of ports for honcho")


def ephemeral_ports_start():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(predicate, timeout=15.0, interval=0.05, what="condition", abort=None):
    """The predicate's first truthy result; exceptions count as not yet.

    ``abort``, called on every round, may raise to end the wait at once (what it
    waits for has died, or a signal asked to stop)."""
    deadline = time.monotonic() + timeout
    while True:
        if abort:
            abort()
        try:
            result = predicate()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tree_of(pid):
    """The process and all its descendants, children first; empty when it is gone."""
    try:
        root = psutil.Process(pid)
        return root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return []


def signal_all(tree, sig):
    for proc in tree:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def kill_group(pid):
    """SIGKILL the process group ``pid`` leads, if any: it holds descendants re-parented away (orphans)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def wait_dead(tree, timeout):
    """Wait until every process has exited. A zombie counts as exited: whoever reaps
    re-parented orphans (here PID 1) may take its time, and a zombie holds no port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(is_alive(proc) for proc in tree):
            return
        time.sleep(0.02)


def is_alive(proc):
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_tree(pid, timeout=10):
    """SIGKILL a process, its descendants and, when it leads one, its process group."""
    tree = tree_of(pid)
    signal_all(tree, signal.SIGKILL)
    kill_group(pid)
    wait_dead(tree, timeout)


def stop_tree(pid, grace=10):
    """SIGTERM the root so it stops its children its own way, then SIGKILL whatever is left of the tree
    as it was before the SIGTERM: once the root is gone its survivors are re-parented, out of its reach."""
    tree = tree_of(pid)
    signal_all(tree[-1:], signal.SIGTERM)
    wait_dead(tree, grace)
    signal_all([proc for proc in tree if is_alive(proc)], signal.SIGKILL)
    kill_group(pid)
    wait_dead(tree, grace)
