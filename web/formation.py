"""The live formation seen from outside: registry entries joined with psutil's view of each process.

    $ scripts/ps
    INSTANCE  ADDRESS          MASTER  WORKERS      RSS MB  CPU %  UPTIME  SERVED
    web.1     127.0.0.1:5100   4242    4250,4251      61.2    3.0    42s     1234
    $ scripts/ps --watch          # the same table, refreshed in place every second (rich), until Ctrl-C

    >>> [i.name for i in live_instances(client)]
    ['web.1', 'web.2']

``scripts/ps``, the chaos monkey and the report all look at processes this way.
"""
import argparse
import os
import time
from dataclasses import dataclass, field

import psutil

from web.config import redis_url
from web.hits import SERVED
from web.redis_client import connect
from web.registry import Registry


@dataclass
class Instance:
    name: str
    address: str
    master: int
    started: float
    served: int = 0
    workers: list = field(default_factory=list)  # psutil.Process of each worker, on this host only

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


def watch(client, every=1.0, frames=None):
    """The table, redrawn in place every ``every`` seconds until Ctrl-C (or ``frames`` redraws)."""
    from rich.live import Live
    from rich.table import Table

    def render():
        view = Table(*HEADERS, title=f"factor6 formation at {time.strftime('%H:%M:%S')}", title_justify="left")
        for row in rows_of(live_instances(client)):
            view.add_row(*row)
        return view

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
    if not args.watch:
        print(table(live_instances(client)))
        return
    try:
        watch(client)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
