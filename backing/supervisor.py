"""Runs the server as a child and keeps it running: the Procfile's ``redis`` process type.

    supervisor = Supervisor(BackingConfig.from_env(), binary)
    sys.exit(supervisor.run())      # 0 after SIGTERM/SIGINT, 1 when the server keeps dying at start, 2 bad setup

honcho stops the whole formation when one of its direct children exits, so the
server is not one: this supervisor is, and the server is its child.

- **Restarts.** When the server exits without being asked to, it is started again
  on the same port and data folder: at once the first time, then after 0.5, 1, 2 ...
  up to ``REDIS_RESTART_MAX`` seconds while it keeps dying; once a server has stayed
  up ``REDIS_STABLE`` seconds, the next death is again restarted at once, and so is
  a server that had answered and was then killed from outside (SIGKILL, SIGTERM...:
  a chaos monkey or an operator, not a crash loop). Each restart is one line of output.
- **Holding.** While the file ``<data folder>/hold`` names a time (seconds since the
  epoch) still to come, a server that exited is not restarted: the chaos monkey's
  ``redis-outage`` writes it, SIGTERMs the server and removes it when the outage is
  over. The time bounds it: a hold left behind by a monkey that died lapses by itself.
- **Giving up.** A server failing within ``REDIS_FAST_EXIT`` seconds of its start
  ``REDIS_GIVE_UP`` times in a row (a bad binary, a setting it refuses) makes the
  supervisor exit 1 with one line saying so, rather than restart forever. Failing
  means exiting non-zero, or a signal such as SIGSEGV; a server killed with SIGKILL,
  SIGTERM, SIGINT, SIGQUIT or SIGHUP was killed, not failing, and is restarted
  however often that happens. A data folder that cannot be written, one another
  supervisor holds (a lock on ``supervisor.pid``), and a port already taken (another
  formation's Redis, say) are found before the first start: exit 2, one line.
- **Signals.** Handlers only queue the signal and wake the main loop through a pipe,
  the way gunicorn's arbiter does; the loop acts. SIGTERM, SIGINT or SIGQUIT: SIGTERM
  to the server, wait up to ``REDIS_STOP_TIMEOUT`` seconds, SIGKILL, exit 0.
- **No orphans.** The server runs in a process group of its own (honcho's SIGTERM to
  the supervisor's group reaches the supervisor only, which then stops the server its
  own way) and gets SIGKILL as its parent-death signal on Linux: should the
  supervisor be SIGKILLed, the server goes with it.
- **Where the server's pid is.** The supervisor's only child process; also
  ``<data folder>/server.pid`` (removed when the server exits), and the supervisor's own
  in ``<data folder>/supervisor.pid``. Once the server answers, ``INFO server``'s
  ``process_id`` too. The server's pid is the one safe to kill.
- **Identity.** Each time a server started as primary is ready, the supervisor writes the
  formation's identity into it (``common.schema.FORMATION_KEY``): ``FORMATION_ID``, else the
  one the server already holds, else a fresh one; from then on the same at every restart, so a
  server that forgot everything (``REDIS_PERSISTENCE=none``) is still this formation's Redis,
  and a reader that finds another identity there reads another formation's.
- **Roles.** ``REDIS_ROLE`` makes the server a primary, a replica or a Sentinel; in a
  replicated formation each restart follows the primary the Sentinels name, and a
  killed primary waits for a failover before it rejoins (backing/replication.py).
"""
import ctypes
import errno
import os

try:
    import fcntl
except ImportError:  # not POSIX: no lock on the data folder
    fcntl = None
import select
import signal
import subprocess
import sys
import time

from redis.exceptions import RedisError

from backing.config import server_args
from backing.replication import REPLICATED_ARGS, role_args, sentinel_conf, start_as
from backing.server import binary_version, dialled, ping
from common.redis_client import connect, primary_address
from common.schema import FORMATION_KEY
from common.settings import fresh_formation_id, port_problem

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# Deaths by these signals are somebody's doing (a chaos monkey, an operator), not a server failing to start:
# they never count towards giving up. Exit 0 (a SHUTDOWN command) neither.
EXTERNAL = {-s for s in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)} | {0}
TICK_S = 0.2
HOLD_FILE = "hold"  # holds a dead server down until the time in it (bench/chaos/backing.py's redis-outage)
SERVER_PID, SUPERVISOR_PID = "server.pid", "supervisor.pid"  # in the data folder; the second locked while running


def running(data_dir):
    """Whether a supervisor runs for ``data_dir``: one holds its pid file's lock, whatever pid the file names."""
    if fcntl is None:
        return False
    try:
        with open(data_dir / SUPERVISOR_PID) as file:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails while the supervisor's exclusive lock is held
    except BlockingIOError:
        return True
    except OSError:  # no such file: no supervisor ever ran there
        return False
    return False  # the lock was free, and is released with the file


def say(line):
    print(f"backing: {line}", flush=True)


def own_group_and_die_with_parent():
    """A ``preexec_fn``: a process group of its own, and (Linux) SIGKILL when the supervisor dies."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
    parent = os.getpid()

    def arrange():
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the supervisor died before prctl took effect
                os._exit(1)

    return arrange


def restart_delay(streak, most):
    """Seconds before restart number ``streak`` of a run of deaths: 0, then 0.5, 1, 2 ... up to ``most``."""
    return 0.0 if streak <= 0 else min(most, 0.5 * 2 ** (streak - 1))


def how_it_ended(code):
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with rc={code}"


def check_writable(folder):
    """None when the folder exists (made if need be) and a file can be written in it; else why not."""
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return None


class Supervisor:
    def __init__(self, config, binary):
        self.config, self.binary = config, binary
        self.child, self.started, self.ready = None, 0.0, False
        self.due = 0.0  # when to start the next server (monotonic)
        self.streak = 0  # restarts in a row without a stable run in between
        self.fast = 0  # deaths in a row, each soon after its start
        self.restarts = 0
        self.died = 0.0  # when the last server died (monotonic)
        self.waiting = False  # a restart waits for the Sentinels to elect another primary
        self.queue = []
        self.pipe = None
        self.pid_file = config.data_dir / SERVER_PID
        self.hold_file = config.data_dir / HOLD_FILE
        self.holding = False
        self.own_pid_file = config.data_dir / SUPERVISOR_PID
        self.lock_fd = None
        self.formation = config.formation  # FORMATION_ID, else the first server's (stamp)
        self.primary = False  # the running server was started as a primary

    # -- signals: queue and wake, nothing else --------------------------------------------

    def install_signals(self):
        self.pipe = os.pipe()
        for fd in self.pipe:
            os.set_blocking(fd, False)
        for signum in (*STOP_SIGNALS, signal.SIGCHLD):
            signal.signal(signum, self.on_signal)

    def on_signal(self, signum, frame):
        if signum in STOP_SIGNALS or len(self.queue) < 5:  # a burst of SIGCHLD never crowds out a stop
            self.queue.append(signum)
        try:
            os.write(self.pipe[1], b".")
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINTR):
                raise

    def sleep(self, seconds):
        try:
            ready, _, _ = select.select([self.pipe[0]], [], [], max(0.0, seconds))
            if ready:
                while os.read(self.pipe[0], 64):
                    pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- the loop ----------------------------------------------------------------------------

    def run(self):
        self.install_signals()
        idle = self.config.role != "primary" and not self.config.primary
        if self.config.external or idle:
            say(f"no REDIS_PRIMARY: a {self.config.role} with nothing to follow; idle" if idle else
                f"using the Redis at {self.config.external}; no embedded server started")
            while not any(s in STOP_SIGNALS for s in self.queue):
                self.sleep(3600)
            return 0
        problem = check_writable(self.config.data_dir)
        if problem:
            say(f"cannot start: data folder {self.config.data_dir} is not writable ({problem}); "
                "set REDIS_DATA to a folder this user can write")
            return 2
        if not os.access(self.binary, os.X_OK):
            say(f"cannot start: the server binary {self.binary} is not an executable file (REDIS_SERVER)")
            return 2
        holder = self.lock()
        if holder:
            say(f"cannot start: data folder {self.config.data_dir} is in use by another supervisor ({holder})")
            return 2
        taken = next(filter(None, (port_problem(host, self.config.port, "PORT_REDIS")
                                   for host in self.config.bind.split())), None)
        if taken:  # else the server would die at its start, again and again, for seconds before giving up
            say(f"cannot start: {taken}")
            return 2
        say(f"supervising {binary_version(self.binary) or self.binary} on {self.config.bind}:{self.config.port}, "
            f"data in {self.config.data_dir}, persistence {self.config.persistence}, role {self.config.role}; "
            f"pid {os.getpid()}")
        try:
            while True:
                now = time.monotonic()
                if self.child is None and now >= self.due and not self.held():
                    try:
                        self.spawn(now)
                    except OSError as exc:  # the binary cannot be executed at all
                        say(f"cannot start the server {self.binary}: {exc}")
                        return 2
                self.sleep(TICK_S if self.child is not None or self.holding else min(TICK_S, self.due - now))
                if any(s in STOP_SIGNALS for s in self.queue):
                    return self.stop(next(s for s in self.queue if s in STOP_SIGNALS))
                self.queue.clear()  # SIGCHLD only wakes the loop
                code = self.reap(time.monotonic())
                if code is not None:
                    return code
                self.check_ready()
        finally:
            self.remove(self.own_pid_file)

    def lock(self):
        """Hold ``supervisor.pid`` locked (with this pid in it) while running; who holds it, if someone else does."""
        self.lock_fd = os.open(self.own_pid_file, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(self.lock_fd, 32).decode(errors="replace").strip()
                os.close(self.lock_fd)
                self.lock_fd = None
                self.own_pid_file = None  # not ours to remove
                return f"pid {holder}" if holder else "a pid not written yet"
        os.ftruncate(self.lock_fd, 0)
        os.write(self.lock_fd, f"{os.getpid()}\n".encode())
        return None

    def spawn(self, now):
        argv, role = self.argv(now)
        if argv is None:
            self.due = now + 0.5
            return
        self.child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, preexec_fn=own_group_and_die_with_parent())
        self.started, self.ready, self.primary = now, False, role == "primary"
        self.write(self.pid_file, self.child.pid)
        say(f"server started: pid {self.child.pid}, {role}" + (f" (restart {self.restarts})" if self.restarts else ""))

    def argv(self, now):
        """The server's argv and role now; (None, why) while a killed primary waits for a failover."""
        if self.config.role == "sentinel":
            conf = self.config.data_dir / "sentinel.conf"
            if not conf.exists():  # later starts resume from what the Sentinel wrote there
                conf.write_text(sentinel_conf(self.config))
            return [self.binary, str(conf), "--sentinel"], "sentinel"
        named = primary_address(self.config.sentinels, timeout=0.3) if self.config.sentinels else None
        role, follow = start_as(self.config, named, now - self.died, first=self.restarts == 0)
        if role == "wait":
            if not self.waiting:
                say(f"not restarting yet: {follow}; waiting up to {self.config.rejoin_wait:g}s for a failover")
            self.waiting = True
            return None, follow
        self.waiting = False
        described = f"replica of {follow[0]}:{follow[1]}" if follow else "primary"
        replicated = REPLICATED_ARGS if self.config.sentinels or self.config.role == "replica" else []
        return server_args(self.config, self.binary) + role_args(follow) + replicated, described

    def held(self):
        """True while the hold file names a time still to come; one line when a hold begins and ends."""
        try:
            until = float(self.hold_file.read_text())
        except (OSError, ValueError):
            until = 0.0
        holding = until > time.time()
        if holding != self.holding:
            say(f"holding the server down until {until:.3f} ({self.hold_file})" if holding
                else f"hold over ({self.hold_file}): starting the server")
        self.holding = holding
        return holding

    def check_ready(self):
        host = (self.config.bind.split() or [""])[0]  # bind may list several addresses
        if self.child is not None and not self.ready and ping(host, self.config.port, timeout=0.2):
            self.ready = True
            say(f"server pid {self.child.pid} ready on {self.config.bind}:{self.config.port} "
                f"after {time.monotonic() - self.started:.2f}s")
            if self.primary:
                self.stamp(host)

    def stamp(self, host):
        """Write the formation's identity into the server just ready (see Identity above)."""
        client = connect(f"redis://{dialled(host)}:{self.config.port}/0", timeout=2, env={})
        try:
            if client.info("server").get("process_id") != self.child.pid:
                return  # another server answers on this port: not ours to mark
            if self.formation:
                client.set(FORMATION_KEY, self.formation)
            else:
                client.set(FORMATION_KEY, fresh_formation_id(), nx=True)  # a persisted one stays
                self.formation = client.get(FORMATION_KEY)
            say(f"formation {self.formation} ({FORMATION_KEY})")
        except RedisError as exc:  # the next restart tries again; readers see no identity meanwhile
            say(f"could not write the formation's identity {FORMATION_KEY}: {exc}")
        finally:
            client.close()

    def reap(self, now):
        """Notice a dead server and schedule its restart; an exit code when it is time to give up."""
        if self.child is None or self.child.poll() is None:
            return None
        pid, code, up = self.child.pid, self.child.returncode, now - self.started
        self.child, self.died = None, now
        self.remove(self.pid_file)
        if up >= self.config.stable or (self.ready and code in EXTERNAL):
            self.streak = 0
        self.fast = self.fast + 1 if up < self.config.fast_exit and code not in EXTERNAL else 0
        if self.fast >= self.config.give_up:
            say(f"giving up: the server {how_it_ended(code)} within {self.config.fast_exit:g}s of its start "
                f"{self.fast} times in a row (port {self.config.port} taken? data folder {self.config.data_dir} "
                f"unusable? see its output above)")
            return 1
        delay = restart_delay(self.streak, self.config.restart_max)
        self.streak += 1
        self.restarts += 1
        self.due = now + delay
        say(f"server pid {pid} {how_it_ended(code)} after {up:.1f}s up; restart {self.restarts} "
            + (f"in {delay:.1f}s" if delay else "now") + f" on port {self.config.port}, same data folder")
        return None

    def stop(self, signum):
        name = signal.Signals(signum).name
        if self.child is None:
            say(f"{name}: no server running; exiting")
            return 0
        pid = self.child.pid
        say(f"{name}: stopping the server (pid {pid}) with SIGTERM")
        self.child.send_signal(signal.SIGTERM)
        try:
            self.child.wait(self.config.stop_timeout)
        except subprocess.TimeoutExpired:
            say(f"server pid {pid} still running after {self.config.stop_timeout:g}s: SIGKILL")
            self.child.kill()
            self.child.wait()
        self.remove(self.pid_file)
        say(f"server pid {pid} {how_it_ended(self.child.returncode)}; exiting")
        self.child = None
        return 0

    @staticmethod
    def write(path, pid):
        try:
            path.write_text(f"{pid}\n")
        except OSError:
            pass

    @staticmethod
    def remove(path):
        try:
            if path is not None:
                path.unlink()
        except OSError:
            pass
