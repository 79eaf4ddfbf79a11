"""The formation as the dashboard shows it: one card per process, each web instance with its state.

    board = Board(proxy_url="http://127.0.0.1:8000")
    cards = board.sample(client, chaos_events, bad_names=["bad.1"])
    cards["instances"][0]["state"]          # serving, draining, frozen, restarting or gone

    >>> instance_state(master_alive=True, registered=True, workers=["sleeping", "stopped"], recovering=False)
    'frozen'
    >>> instance_state(master_alive=True, registered=False, workers=["sleeping"], recovering=False)
    'draining'
    >>> awaiting_recovery([{"time": 1, "action": "kill", "target": "web.1", "outcome": "ok"}])
    {'web.1'}

States: ``gone`` (its master has exited), ``draining`` (deregistered, the master
still finishing its requests), ``frozen`` (a worker is stopped), ``restarting``
(a kill, term or reload still waits for its recovery, or no worker is up yet),
else ``serving``. Restarts are worker pids that were seen and have gone. The
proxy's card comes from its ``/_proxy/metrics`` (per-backend in flight), the
backing service's from Redis itself; its ``extra`` is the slot for what a
supervised backing service will report.
"""
import time

import psutil
import requests
from redis.exceptions import RedisError

from bench.chaos.vocabulary import RECOVERED
from bench.chaos.targets import local_master
from scaler.formation import live_instances

SERVING, DRAINING, FROZEN, RESTARTING, GONE = "serving", "draining", "frozen", "restarting", "gone"


def instance_state(master_alive, registered, workers, recovering):
    """One instance's state from its master, its registration and its workers' psutil statuses."""
    if not master_alive:
        return GONE
    if not registered:
        return DRAINING
    if psutil.STATUS_STOPPED in workers:
        return FROZEN
    if recovering or not workers:
        return RESTARTING
    return SERVING


def awaiting_recovery(events):
    """Targets with a kill, term or reload whose ``recovery`` follow-up has not come yet."""
    waiting = {}
    for event in events:
        if event.get("action") in RECOVERED and event.get("outcome") == "ok" and event.get("part_of") is None:
            waiting[event["target"]] = waiting.get(event["target"], 0) + 1
        elif event.get("action") == "recovery" and waiting.get(event.get("target")):
            waiting[event["target"]] -= 1
    return {target for target, count in waiting.items() if count > 0}


def worker_row(proc, now):
    try:
        return {"pid": proc.pid, "age_s": round(now - proc.create_time(), 1), "status": proc.status()}
    except psutil.Error:
        return None


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError):
        return False


def listener_pid(url):
    """The pid listening on the url's port on this host, or None."""
    try:
        port = int(url.rstrip("/").rpartition(":")[2])
        return next((c.pid for c in psutil.net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port), None)
    except (psutil.Error, ValueError):
        return None


class Board:
    def __init__(self, proxy_url):
        self.proxy_url = proxy_url
        self.known = {}  # instance name -> its last card, kept after it is gone
        self.seen_workers = {}  # instance name -> every worker pid seen under its current master

    def sample(self, client, chaos_events=(), bad_names=()):
        now = time.time()
        metrics = self.proxy_metrics()
        in_flight = {b["address"]: b.get("in_flight", 0) for b in (metrics or {}).get("backends", [])}
        recovering = awaiting_recovery(chaos_events)
        registered = {inst.name: inst for inst in live_instances(client)}
        for name, inst in registered.items():
            rows = [row for row in (worker_row(w, now) for w in inst.workers) if row]
            seen = self.seen_workers.setdefault((name, inst.master), set())
            seen.update(row["pid"] for row in rows)
            ours = local_master(inst) is not None  # else on another host: its workers are not ours to see
            self.known[name] = {
                "name": name, "kind": "bad" if name in bad_names else "web", "address": inst.address,
                "master": inst.master, "ours": ours, "workers": rows, "served": inst.served,
                "in_flight": in_flight.get(inst.address, 0), "restarts": len(seen) - len(rows),
                "state": instance_state(True, True, [r["status"] for r in rows], name in recovering)
                if ours else SERVING,
            }
        for name, card in self.known.items():
            if name not in registered:
                still = card["ours"] and alive(card["master"])
                card.update(state=DRAINING if still else GONE, in_flight=in_flight.get(card["address"], 0))
        return {"time": now, "proxy": self.proxy_card(metrics), "backing": self.backing_card(client),
                "instances": sorted(self.known.values(), key=lambda c: (c["kind"], c["name"]))}

    def proxy_metrics(self):
        try:
            return requests.get(f"{self.proxy_url}/_proxy/metrics", timeout=1).json()
        except (requests.RequestException, ValueError):
            return None

    def proxy_card(self, metrics):
        if not metrics:
            return {"name": "proxy", "address": self.proxy_url, "state": "down"}
        totals = metrics.get("totals", {})
        return {"name": "proxy", "address": self.proxy_url, "state": "up", "pid": listener_pid(self.proxy_url),
                "in_flight": totals.get("in_flight"),
                "requests": totals.get("requests"), "p95_ms": totals.get("p95_ms"), "rate_rps": totals.get("rate_rps"),
                "backends": len(metrics.get("backends", []))}

    @staticmethod
    def backing_card(client):
        kwargs = client.connection_pool.connection_kwargs
        card = {"name": "redis", "address": f"{kwargs.get('host')}:{kwargs.get('port')}", "extra": {}}
        try:
            info = client.info("server") | client.info("persistence") | client.info("replication")
        except RedisError as exc:
            return {**card, "state": "down", "reason": str(exc)[:120]}
        return {**card, "state": "up", "pid": info.get("process_id"), "role": info.get("role"),
                "persistence": "aof" if info.get("aof_enabled") else "rdb"}
