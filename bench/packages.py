"""Debian packages a feature or a test needs (nftables, nginx, haproxy, wrk, chromium, redis-tools...): installed
by the code that needs them, or a one-line reason why not.

    path = installed("wrk", "wrk")         # /usr/bin/wrk, after apt-get install when it was missing (as root)
    except Missing as exc: print(exc)      # "wrk is not installed and could not be (apt-get install -y wrk, as root)"

``FACTOR6_NO_INSTALL=1`` in the environment installs nothing: the machine is taken as it is, and a missing
program is Missing at once (tests/test_fresh_machine.py shows the suite skipping, not failing, that way).
Installs are one at a time, across processes too (parallel test workers, concurrent checks): the first one
installs, the others wait for it and then find the program.
"""
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NO_INSTALL = "FACTOR6_NO_INSTALL"
LOCK = Path(tempfile.gettempdir()) / "factor6-apt.lock"
# apt itself waits this long for another apt or dpkg (another session's install) to finish.
APT_WAIT = ["-o", "DPkg::Lock::Timeout=600"]


class Missing(Exception):
    """A program is not installed and could not be."""


_updated = []  # apt-get update runs once per process


def found(tool):
    """The path of ``tool`` on PATH or in the sbin folders (not on a plain user's PATH), or None."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def installed(tool, package):
    """The path of ``tool``, installing its Debian package first when it is missing and that is possible."""
    if found(tool):
        return found(tool)
    if os.environ.get(NO_INSTALL, "") not in ("", "0"):
        raise Missing(f"{tool} is not installed, and {NO_INSTALL} is set (apt-get install -y {package})")
    if shutil.which("apt-get") and os.geteuid() == 0:
        with open(LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not found(tool):  # another process may have installed it while this one waited
                install(package)
    if not found(tool):
        raise Missing(f"{tool} is not installed and could not be (apt-get install -y {package}, as root)")
    return found(tool)


def install(package):
    print(f"# installing {package} with apt-get", file=sys.stderr)
    if not _updated:
        subprocess.run(["apt-get", *APT_WAIT, "update", "-qq"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _updated.append(True)
    subprocess.run(["apt-get", *APT_WAIT, "install", "-y", "-qq", package], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
