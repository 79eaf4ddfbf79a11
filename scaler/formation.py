"""The live formation seen from outside: registry entries joined with psutil's view of each process.

    $ scripts/ps
    backing: valkey 9.1.2 at redis://127.0.0.1:6379/0, formation f3c9a1b2d4e5, up 42s; server pid 4201 (safe to
             kill: its supervisor restarts it), supervisor pid 4200 (python -m backing: under honcho, killing it
             stops the formation)
    INSTANCE  ADDRESS          MASTER  WORKERS      RSS MB  CPU %  UPTIME  SERVED
    web.1     127.0.0.1:5100   4242    4250,4251      61.2    3.0    42s     1234
    $ scripts/ps --watch          # the same table, refreshed in place every second (rich), until Ctrl-C

    >>> Registry(client).register({"name": "web.1", "address": "127.0.0.1:5100", "pid": 4242})
    >>> [(i.name, i.address) for i in live_instances(client)]
    [('web.1', '127.0.0.1:5100')]

``scripts/ps``, the chaos monkey and the report all look at processes this way.
Without a Redis to ask, ``scripts/ps`` says so in one line and exits 2; so it does when an instance registered
there names another formation than the one that Redis holds (``common.schema.FORMATION_KEY``, web/identity.py).
"""
import argparse
import os
import sys
import time
from dataclasses import dataclass, field

import psutil
from redis.exceptions import RedisError

from backing.server import server_info
from common.settings import redis_url
from common.schema import FORMATION_KEY, SERVED
from common.redis_client import connect
from common.registry import Registry


@dataclass
class Instance:
    name: str
    address: str
    master: int
    started: float
    served: int = 0
    workers: list = field(default_factory=list)  # psutil.Process of each worker, on this host only
    formation: str = None  # the formation identity it reports, once it knows one

    def processes(self):
        """The master and its workers that still exist on this host."""
        try:
            return [psutil.Process(self.master), *self.workers]
        except psutil.NoSuchProcess:
            return list(self.workers)


def workers_of(pid):
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def live_instances(client):
    served = client.hgetall(SERVED)
    return [
        Instance(
            name=entry.get("name", "?"),
            address=entry["address"],
            master=entry.get("pid", 0),
            started=entry.get("started", 0.0),
            served=int(served.get(entry.get("name"), 0)),
            workers=workers_of(entry.get("pid", 0)) if entry.get("host") in (None, os.uname().nodename) else [],
            formation=entry.get("formation"),
        )
        for entry in Registry(client).instances()
    ]


def usage(processes):
    """(RSS in MB, CPU %) summed over processes; CPU % is sampled over 0.1 s."""
    alive = []
    for proc in processes:
        try:
            proc.cpu_percent(None)
            alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    time.sleep(0.1)
    rss = cpu = 0.0
    for proc in alive:
        try:
            rss += proc.memory_info().rss / 2**20
            cpu += proc.cpu_percent(None)
        except psutil.NoSuchProcess:
            pass
    return rss, cpu


HEADERS = ("INSTANCE", "ADDRESS", "MASTER", "WORKERS", "RSS MB", "CPU %", "UPTIME", "SERVED")


def rows_of(instances, now=None):
    now = now or time.time()
    rows = []
    for inst in sorted(instances, key=lambda i: i.name):
        rss, cpu = usage(inst.processes())
        rows.append((inst.name, inst.address, str(inst.master), ",".join(str(w.pid) for w in inst.workers) or "-",
                     f"{rss:.1f}", f"{cpu:.1f}", f"{now - inst.started:.0f}s", str(inst.served)))
    return rows


def table(instances, now=None):
    rows = [HEADERS, *rows_of(instances, now)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def strangers(client, instances):
    """One line per instance that names another formation than the Redis it registered in holds."""
    held = client.get(FORMATION_KEY)
    return [f"{i.name} ({i.address}) reports formation {i.formation} but the Redis it registered in holds "
            f"{f'formation {held}' if held else 'no formation identity'}: it belongs to another formation"
            for i in instances if i.formation and i.formation != held]


def supervisor_of(pid):
    """The ``python -m backing`` process supervising server ``pid`` on this host, or None."""
    try:
        parent = psutil.Process(pid).parent()
        return parent if parent and "backing" in " ".join(parent.cmdline()) else None
    except (psutil.Error, OSError):
        return None


def is_server(pid):
    """A Valkey or Redis server runs as ``pid`` here (not some other process with the pid another host's has)."""
    try:
        name = psutil.Process(pid).name().lower()
    except (psutil.Error, OSError):
        return False
    return "valkey" in name or "redis" in name


def local_supervisors(port):
    """(supervisor pid, [server pids]) of each ``python -m backing`` on this host serving ``port``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if (proc.info["cmdline"] or [])[-2:] != ["-m", "backing"]:
                continue
            if str(proc.environ().get("PORT_REDIS", "6379")) != str(port):
                continue
            found.append((proc.pid, [child.pid for child in proc.children()]))
        except (psutil.Error, OSError):
            continue
    return found


def backing_line(client, url):
    """One line on the backing service: what it is, and which of its pids is safe to kill."""
    info = server_info(client)
    formation = client.get(FORMATION_KEY)
    line = (f"backing: {info['name']} {info['version']} at {url}, "
            f"{f'formation {formation}' if formation else 'no formation identity'}, up {info['uptime_s']}s; ")
    if not is_server(info["pid"]):
        return line + f"server pid {info['pid']} (not on this host)"
    supervisor = supervisor_of(info["pid"])
    if supervisor is None:
        return line + f"server pid {info['pid']}, not supervised here (killing it ends the Redis)"
    return line + (f"server pid {info['pid']} (safe to kill: its supervisor restarts it), supervisor pid "
                   f"{supervisor.pid} (python -m backing: under honcho, killing it stops the formation)")


def watch(client, url, every=1.0, frames=None):
    """The backing line and the table, redrawn in place every ``every`` seconds until Ctrl-C (or ``frames``
    redraws). In a narrow terminal the pids fold onto a second line rather than lose digits."""
    from rich.console import Group
    from rich.live import Live
    from rich.table import Column, Table
    from rich.text import Text

    def render():
        columns = [Column(name, overflow="fold", no_wrap=name in ("RSS MB", "CPU %")) for name in HEADERS]
        view = Table(*columns, title=f"factor6 formation at {time.strftime('%H:%M:%S')}", title_justify="left",
                     box=None, pad_edge=False)
        for row in rows_of(live_instances(client)):
            view.add_row(*row[:3], row[3].replace(",", " "), *row[4:])  # wrapped between pids, not inside one
        return Group(Text(backing_line(client, url)), view)

    with Live(render(), auto_refresh=False) as live:
        for _ in iter(int, 1) if frames is None else range(frames):
            time.sleep(every)
            live.update(render(), refresh=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/ps", description="List the live formation's web instances.")
    parser.add_argument("--redis-url", default=redis_url(os.environ), help="the formation's Redis (default from env)")
    parser.add_argument("--watch", action="store_true", help="refresh the table in place every second, until Ctrl-C")
    args = parser.parse_args(argv)
    client = connect(args.redis_url)
    try:
        instances = live_instances(client)
        wrong = strangers(client, instances)
        if wrong:
            sys.stderr.write(f"scripts/ps: {wrong[0]}" + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "")
                             + "\n")
            return 2
        if args.watch:
            watch(client, args.redis_url)
            return 0
        print(backing_line(client, args.redis_url))
        print(table(instances))
    except KeyboardInterrupt:
        pass
    except RedisError as exc:
        sys.stderr.write(f"scripts/ps: the formation's Redis at {args.redis_url} does not answer ({exc});"
                         f" is the formation running? (--redis-url, or REDIS_URL / PORT_REDIS)\n")
        port = client.connection_pool.connection_kwargs.get("port")
        for supervisor, servers in local_supervisors(port):
            state = f"server pid {servers[0]}" if servers else "no server running (restarting, or gave up)"
            print(f"backing: supervisor pid {supervisor} (python -m backing) for port {port} here: {state}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
