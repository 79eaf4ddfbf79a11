"""Hosts on one machine: Linux network namespaces joined by one bridge, made and removed by name.

    network = Network(["redis", "web1"])               # namespaces named f6-<this pid>-redis, ...
    redis = network.hosts["redis"]                     # Host(name='redis', address='198.18.0.1', ...)
    network.create()
    subprocess.Popen(redis.command(["redis-server", "--bind", redis.address], {"PATH": "/usr/bin:/bin"}))
    network.remove()                                   # every process in it, every namespace, veth, bridge

Each host is a namespace with its own loopback (up) and one veth, ``eth0``, whose
peer sits in a switch namespace that holds the bridge. The machine's own
namespace holds no end of any link and the hosts have no default route, so a
packet can only go from one host to another. Commands run on a host get exactly
the environment given, an IPC namespace and a private ``/dev/shm``: no
variable, System V or POSIX shared memory, semaphore or message queue reaches
them from the machine or from another host. The file system stays shared, as
the code and the run's report folder must be; no host is given another's paths.

Namespaces are named ``f6-<pid of the owner>-<host>``: ``remove_leftovers()``
removes those of owners that no longer run (a crashed or SIGKILLed run), and
leaves a concurrent run alone. Needs root and iproute2's ``ip``.
"""
import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from scaler.processes import is_alive, kill_tree

PREFIX = "f6-"
# RFC 2544's benchmarking range: never routed on the internet, and unlikely to clash with a real network.
SUBNET = ipaddress.ip_network("198.18.0.0/15")
SWITCH = "switch"
# Run through sh so the mount happens inside the new mount namespace, then exec: the pid stays the command's.
PRIVATE_SHM = 'mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$@"'


class Unavailable(Exception):
    """Network namespaces cannot be made here; the message says why."""


def ip(*args):
    """Runs ``ip args``; raises RuntimeError with ip's own complaint when it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def unavailable():
    """Why namespaces cannot be made here, or None when they can (checked by making one)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN); run as root"
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux")):
        if not shutil.which(tool):
            return f"no `{tool}` command: apt-get install {package}"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except RuntimeError as exc:
        return f"cannot create a network namespace: {exc}"
    ip("netns", "del", probe)
    return None


def namespaces():
    """Names of every named network namespace on this machine."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def remove_namespace(name):
    """Kills whatever runs inside, then deletes it; its veth ends and bridge go with it."""
    for pid in ip("netns", "pids", name).split():
        kill_tree(int(pid))
    ip("netns", "del", name)


def remove_leftovers():
    """Removes the namespaces of runs whose owner process is gone; returns their names."""
    stale = [name for name in namespaces()
             if (match := re.match(rf"{PREFIX}(\d+)-", name)) and not is_alive(int(match.group(1)))]
    for name in stale:
        remove_namespace(name)
    return stale


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: str

    def command(self, argv, env):
        """argv run on this host with exactly env: in its network namespace, with its own IPC and /dev/shm."""
        return ["ip", "netns", "exec", self.netns, "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                "unshare", "--ipc", "--mount", "sh", "-c", PRIVATE_SHM, "-", *map(str, argv)]


class Network:
    """Hosts on one bridge, addressed in the order named from SUBNET; ``owner`` (a pid) names the run."""

    def __init__(self, names, owner=None):
        self.prefix = f"{PREFIX}{owner or os.getpid()}-"
        self.switch = self.prefix + SWITCH  # the bridge's namespace; its ports are named after the hosts
        self.hosts = {name: Host(name, self.prefix + name, str(address))
                      for name, address in zip(names, SUBNET.hosts())}

    def create(self):
        switch = self.switch
        ip("netns", "add", switch)
        ip("-n", switch, "link", "add", "br0", "type", "bridge")
        ip("-n", switch, "link", "set", "dev", "br0", "up")
        for host in self.hosts.values():
            ip("netns", "add", host.netns)
            # Both ends are born in their namespaces: no half-made link is ever left in the machine's own.
            ip("link", "add", "eth0", "netns", host.netns, "type", "veth", "peer", "name", host.name, "netns", switch)
            ip("-n", switch, "link", "set", "dev", host.name, "master", "br0", "up")
            ip("-n", host.netns, "link", "set", "dev", "lo", "up")
            ip("-n", host.netns, "addr", "add", f"{host.address}/{SUBNET.prefixlen}", "dev", "eth0")
            ip("-n", host.netns, "link", "set", "dev", "eth0", "up")
        return self

    def remove(self):
        """Every namespace of this network, whatever state it got to; returns the names removed."""
        mine = [name for name in namespaces() if name.startswith(self.prefix)]
        for name in mine:
            remove_namespace(name)
        return mine
