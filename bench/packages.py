"""Debian packages a feature needs (nginx, haproxy, wrk, redis-tools...): installed by the code that needs them,
or a one-line reason why not.

    path = installed("wrk", "wrk")         # /usr/bin/wrk, after apt-get install when it was missing (as root)
    except Missing as exc: print(exc)      # "wrk is not installed and could not be (apt-get install -y wrk, as root)"
"""
import os
import shutil
import subprocess
import sys


class Missing(Exception):
    """A program is not installed and could not be."""


_updated = []  # apt-get update runs once per process


def installed(tool, package):
    """The path of ``tool``, installing its Debian package first when it is missing and that is possible."""
    def found():
        return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")

    if not found() and shutil.which("apt-get") and os.geteuid() == 0:
        print(f"# installing {package} with apt-get", file=sys.stderr)
        if not _updated:
            subprocess.run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _updated.append(True)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not found():
        raise Missing(f"{tool} is not installed and could not be (apt-get install -y {package}, as root)")
    return found()
