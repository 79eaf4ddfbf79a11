"""Whole process trees for the harness and the tests: free ports, readiness waits, cleanup.

    port = free_port()
    wait_until(lambda: requests.get(url).ok, timeout=15, what="the proxy")
    kill_tree(honcho.pid)  # honcho, every instance master and every worker

honcho starts each process in a session of its own, so a process group kill
would miss them; the tree is collected through psutil before anything is
signalled, because a killed parent's children are re-parented and lost.
"""
import os
import signal
import socket
import time

import psutil


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=15.0, interval=0.05, what="condition"):
    """The predicate's first truthy result; exceptions count as not yet."""
    deadline = time.monotonic() + timeout
    while True:
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


def kill_tree(pid, timeout=10):
    tree = tree_of(pid)
    signal_all(tree, signal.SIGKILL)
    psutil.wait_procs(tree, timeout=timeout)


def stop_tree(pid, grace=10):
    """SIGTERM the root so it stops its children its own way, then SIGKILL whatever is left.

    A root started with ``start_new_session=True`` leads its own process group, which also
    catches descendants that were re-parented away from the tree (orphans).
    """
    tree = tree_of(pid)
    if tree:
        signal_all(tree[-1:], signal.SIGTERM)
        psutil.wait_procs(tree, timeout=grace)
        signal_all(tree, signal.SIGKILL)
        psutil.wait_procs(tree, timeout=grace)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
