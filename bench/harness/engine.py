"""A Docker engine of the harness's own: ``dockerd`` in a network namespace, its state in one cache folder.

    with DockerEngine() as engine:                  # installs docker.io/debootstrap when missing (root)
        engine.client.ping()                        # the Docker SDK's client, on this engine's socket
        image = engine.project_image()              # the project's Dockerfile, built on an offline base
        engine.cli("stack", "deploy", "-c", "docker-compose.yml", "factor6")
    # stopped: swarm left, daemon stopped, namespace, veth and NAT removed (also after an error)

    reason = unavailable()                          # None, or one line why Docker cannot run here

The daemon runs in the network namespace ``f6-<owner pid>-docker`` (entered
with ``nsenter --net``: ``ip netns exec`` remounts /sys and hides the cgroups),
in a private mount namespace, so its overlay mounts vanish with it. Its
bridges, iptables rules and Swarm state never touch the machine's own network.
One veth joins the namespace (``ENGINE_ADDRESS``) to the machine
(``HOST_ADDRESS``): the machine reaches published ports there, and nothing
else does. While an image builds, nftables masquerades the namespace's traffic
and IPv4 forwarding is on, because pip in a ``RUN`` step needs PyPI; both are
undone right after.

Everything the daemon keeps (``--data-root``, ``--exec-root``, pid file,
socket, log) lives under ``CACHE`` (``FACTOR6_DOCKER_CACHE``, default
/var/cache/factor6/docker), outside the clone, so a second run finds its images
and volumes. No registry is needed: the base image is ``debootstrap
--variant=minbase bookworm`` from the Debian mirror with a Python venv on the
PATH and this machine's CA certificates, ``docker import``ed as ``BASE_IMAGE``;
the project's Dockerfile takes it as its ``BASE`` build argument.
"""
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import docker

from bench.harness.netns import PREFIX, ip, remove_leftovers, remove_namespace
from bench.packages import Missing, installed
from bench.paths import ROOT

CACHE = Path(os.environ.get("FACTOR6_DOCKER_CACHE") or "/var/cache/factor6/docker")
BASE_IMAGE = "factor6-base:bookworm"
PROJECT_IMAGE = "factor6:local"
MIRROR = "http://deb.debian.org/debian"
CA_FOLDER = Path("/usr/local/share/ca-certificates")  # the machine's own CAs (pip's egress may need them)
HOST_ADDRESS, ENGINE_ADDRESS, LINK_PREFIX = "10.207.0.1", "10.207.0.2", 30
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
TURN_TIMEOUT_S = 1200  # the longest a run waits for another to leave the engine
LOCK = "/run/lock/factor6-docker.lock"  # held while an engine runs: one at a time on the machine


class Unavailable(Exception):
    """Docker cannot run on this machine; the message says why, in one line."""


def unavailable():
    """Why a Docker engine cannot run here, or None when it can (root, overlay, cgroups, namespaces)."""
    if sys.platform != "linux":
        return "Docker's engine runs on Linux only"
    if os.geteuid() != 0:
        return "running dockerd needs root"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlay file system (dockerd's overlay2 storage driver needs it)"
    if not any(Path("/sys/fs/cgroup").glob("*")):
        return "no cgroups mounted at /sys/fs/cgroup"
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux"), ("unshare", "util-linux")):
        if not shutil.which(tool):
            return f"no `{tool}` command: apt-get install {package}"
    return None


def _run(argv, **kwargs):
    """Runs argv; RuntimeError with its own complaint when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))}: {(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


class DockerEngine:
    """One dockerd for this process (see the module docstring); ``start()`` then ``stop()``, or ``with``."""

    def __init__(self, cache=CACHE, owner=None):
        self.cache = Path(cache)
        self.netns = f"{PREFIX}{owner or os.getpid()}-docker"
        self.veth = f"f6d{owner or os.getpid()}"[:15]  # the machine's end; the namespace's is eth0
        self.socket = self.cache / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.nat_table = f"factor6_docker_{owner or os.getpid()}"
        self.client = None
        self.daemon = None
        self._lock = None

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, abort=None):
        """Installs what is missing, then starts the daemon; Unavailable (one line) where it cannot run.
        ``abort()``, called while waiting for another run to leave the engine, may raise to stop waiting."""
        reason = unavailable()
        if reason:
            raise Unavailable(reason)
        try:
            for tool, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"), ("nft", "nftables")):
                installed(tool, package)
        except Missing as exc:
            raise Unavailable(str(exc)) from None
        self.cache.mkdir(parents=True, exist_ok=True)
        self._lock = open(LOCK, "w")
        self._take_turn(abort)
        try:
            remove_leftovers()  # a crashed run's namespace, with whatever daemon still ran in it
            self._namespace()
            self._daemon()
        except BaseException:
            self.stop()
            raise
        return self

    def _take_turn(self, abort):
        """One engine on the machine (its addresses are fixed): a second run waits its turn, as tests in
        parallel processes do."""
        deadline = time.monotonic() + TURN_TIMEOUT_S
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                try:
                    if abort:
                        abort()
                    if time.monotonic() > deadline:
                        raise Unavailable(f"another run kept the harness's Docker engine for {TURN_TIMEOUT_S}s")
                except BaseException:
                    self._lock.close()
                    self._lock = None
                    raise
                if not getattr(self, "_said", False):
                    print("# waiting for the harness's Docker engine: another run uses it", file=sys.stderr)
                    self._said = True
                time.sleep(1)

    def stop(self):
        """Leaves the swarm, stops the daemon (its containers with it), removes namespace, veth and NAT."""
        if self._lock is None:
            return  # never started, or waited in vain for another run's engine: nothing here is ours
        if self.client is not None:
            try:
                if self.client.info().get("Swarm", {}).get("LocalNodeState") not in (None, "inactive"):
                    self.client.swarm.leave(force=True)
            except docker.errors.APIError:
                pass
            self.client.close()
            self.client = None
        if self.daemon is not None:
            self.daemon.terminate()
            try:
                self.daemon.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
            self.daemon = None
        self._forwarding(False)
        if self.netns in (line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()):
            remove_namespace(self.netns)  # the shims and containers left, if the daemon could not stop them
        for leftover in (self.socket, self.cache / "docker.pid"):
            leftover.unlink(missing_ok=True)
        if self._lock:
            self._lock.close()
            self._lock = None

    def _namespace(self):
        ip("netns", "add", self.netns)
        ip("-n", self.netns, "link", "set", "dev", "lo", "up")
        ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        ip("addr", "add", f"{HOST_ADDRESS}/{LINK_PREFIX}", "dev", self.veth)
        ip("link", "set", "dev", self.veth, "up")
        ip("-n", self.netns, "addr", "add", f"{ENGINE_ADDRESS}/{LINK_PREFIX}", "dev", "eth0")
        ip("-n", self.netns, "link", "set", "dev", "eth0", "up")
        ip("-n", self.netns, "route", "add", "default", "via", HOST_ADDRESS)

    def _daemon(self):
        log = open(self.cache / "dockerd.log", "ab")
        self.daemon = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--mount", "--propagation", "private",
             "dockerd", "--data-root", self.cache / "data", "--exec-root", self.cache / "exec",
             "--pidfile", self.cache / "docker.pid", "--host", self.host, "--storage-driver", "overlay2"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # A task whose image is here starts from it, without asking a registry first (none answers).
            env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"})
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.daemon.returncode}; see {self.cache / 'dockerd.log'}")
            try:
                self.client = docker.DockerClient(base_url=self.host, timeout=120)
                self.client.ping()
                break
            except (docker.errors.DockerException, OSError):
                self.client = None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dockerd did not answer on {self.socket} within {START_TIMEOUT_S}s")
                time.sleep(0.2)
        self.client.containers.prune()  # a previous run's stopped task containers, then their volumes
        self.client.volumes.prune()

    def _forwarding(self, on):
        """NAT from the namespace to the machine's own routes, for a build's pip (on) or none (off)."""
        forward = Path("/proc/sys/net/ipv4/ip_forward")
        if on:
            self._forward_was = forward.read_text().strip()
            _run(["nft", "-f", "-"], input=(
                f"table ip {self.nat_table} {{\n"
                f"  chain postrouting {{ type nat hook postrouting priority srcnat; ip saddr {ENGINE_ADDRESS}"
                f" masquerade; }}\n}}\n"))
            forward.write_text("1")
        elif getattr(self, "_forward_was", None) is not None:
            forward.write_text(self._forward_was)
            self._forward_was = None
            subprocess.run(["nft", "delete", "table", "ip", self.nat_table], capture_output=True)

    # -- what runs on it ---------------------------------------------------------------------

    def cli(self, *args, check=True, **kwargs):
        """The docker command line on this engine: ``docker -H <socket> args``; its stdout."""
        argv = ["docker", "-H", self.host, *map(str, args)]
        if not check:
            return subprocess.run(argv, capture_output=True, text=True, **kwargs)
        return _run(argv, **kwargs)

    def base_image(self):
        """BASE_IMAGE, imported once from a debootstrapped root (kept as a tar in the cache)."""
        if self.client.images.list(name=BASE_IMAGE):
            return BASE_IMAGE
        archive = self.cache / "base" / "bookworm-python.tar"
        if not archive.exists():
            self._bootstrap(archive)
        with open(archive, "rb") as data:
            self.client.api.import_image_from_data(
                data, repository=BASE_IMAGE.split(":")[0], tag=BASE_IMAGE.split(":")[1],
                changes=["ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8", 'CMD ["python"]'])
        return BASE_IMAGE

    def _bootstrap(self, archive):
        """Debian bookworm, minimal, with python3-venv: a venv at /opt/venv stands for python:3.11-slim's Python."""
        rootfs = archive.parent / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        archive.parent.mkdir(parents=True, exist_ok=True)
        print("# debootstrap bookworm for the base image (once; about a minute)", file=sys.stderr)
        _run(["debootstrap", "--variant=minbase", "--include=python3-venv,ca-certificates", "bookworm", rootfs, MIRROR])
        for certificate in CA_FOLDER.glob("*.crt"):
            shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
        _run(["chroot", rootfs, "update-ca-certificates"])
        _run(["chroot", rootfs, "python3", "-m", "venv", "/opt/venv"])
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / cache).glob("*.*"):
                path.unlink()
        with tarfile.open(archive.with_suffix(".part"), "w") as tar:
            tar.add(rootfs, arcname=".")
        archive.with_suffix(".part").rename(archive)
        shutil.rmtree(rootfs)

    def project_image(self, tag=PROJECT_IMAGE):
        """The project's Dockerfile built on the base image (layers cached in the data root); its tag."""
        base = self.base_image()
        self._forwarding(True)
        try:
            self.client.images.build(path=str(ROOT), tag=tag, buildargs={"BASE": base}, network_mode="host", rm=True)
        except docker.errors.BuildError as exc:
            lines = [str(chunk.get("stream", chunk.get("error", ""))).strip() for chunk in exc.build_log]
            raise RuntimeError(f"docker build failed: {exc}; last output: {' | '.join(filter(None, lines))[-800:]}")
        finally:
            self._forwarding(False)
        self.client.images.prune(filters={"dangling": True})  # the layers of the builds before: the cache stays small
        return tag

    def swarm(self):
        """Makes this engine a single-node swarm (left again by ``stop()``)."""
        if self.client.info()["Swarm"]["LocalNodeState"] == "inactive":
            self.client.swarm.init(advertise_addr=ENGINE_ADDRESS, listen_addr=f"{ENGINE_ADDRESS}:2377")
        return self
