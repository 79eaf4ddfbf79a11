"""Network faults between ``--hosts`` hosts: partitions, latency, packet loss and resets, made with nft, tc and ss.

    faults = NetworkFaults.from_layout("reports/x/hosts.json", seed=7, fault_s=5)
    fault = faults.plan("partition")     # Fault(action='partition', target='web2|redis', commands=[...], ...)
    faults.apply(fault)                  # 'ok', or 'error: <what>' with whatever was applied undone
    faults.heal(fault)                   # runs fault.undo: the nft table or netem qdisc is gone again

The engine (bench/chaos/engine.py) dispatches the NETWORK_ACTIONS here and
heals each lasting fault after ``fault_s``, at its stop, on SIGTERM or Ctrl-C.
Faults act from the machine's own namespace on the hosts' shared switch
(bench/harness/netns.py), where each host's veth peer is a bridge port named
after the host:

- ``partition``: an nft ``bridge`` table in the switch drops every frame
  between two hosts, both ways; ``oneway``: only those from the first to the
  second. ``partitions`` names the pairs, e.g. ``web-redis`` (a web host from
  Redis) and ``web-proxy`` (a web host from the proxy); ``web`` is a seeded
  choice among the web hosts. The drop is silent, as on a cut cable: a
  connect times out, an established connection stalls.
- ``latency``: tc netem on the host's switch port, ``delay 50ms 20ms``: each
  frame to the host waits 50 ± 20 ms, so each round trip with it takes that
  much longer. Needs the kernel's netem qdisc (``sch_netem``).
- ``loss``: an nft table dropping a share of the frames to and from the host.
- ``reset``: ``ss -K`` on the host: every established TCP connection of it
  is torn down at once (needs ``CONFIG_INET_DIAG_DESTROY``); instant, no heal.

Every command is kept as a shell line on the fault (``commands``, ``undo``),
and so in chaos.jsonl: a reader can apply and undo a fault by hand. Each fault
has a table or qdisc of its own, so healing one never touches another, and
removing the run's namespaces (the harness's stop, the leftover sweep) removes
any that is left. Choices of hosts come from a random stream of their own
(``<seed>:network``), so adding network actions leaves the process actions'
sequence as it was.
"""
import itertools
import json
import random
import shlex
import subprocess
import threading
from dataclasses import dataclass, field

from bench.packages import Missing, installed

DEFAULT_PARTITIONS = "web-redis,web-proxy"
ROLES = ("web", "redis", "proxy", "load")
COMMAND_TIMEOUT_S = 10


class Refused(Exception):
    """A network action of the mix cannot be made here; the message says why, in one line."""


@dataclass
class Fault:
    action: str
    target: str  # "web1|redis" both ways, "web1>redis" one way, "web1" one host
    hosts: list
    commands: list  # shell lines, applied in order
    undo: list  # shell lines that heal it; empty for an instant fault
    duration_s: float | None = None
    details: dict = field(default_factory=dict)


def partition_pairs(text):
    """``"web-redis,web-proxy"`` -> ``[("web", "redis"), ("web", "proxy")]``; ValueError naming a bad pair."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        first, _, second = item.partition("-")
        if first not in ROLES or second not in ROLES or first == second:
            raise ValueError(f"partition {item!r} is not <role>-<role> with two of {', '.join(ROLES)}")
        pairs.append((first, second))
    if not pairs:
        raise ValueError("no partition pair given")
    return pairs


def shell(argv):
    return shlex.join(str(part) for part in argv)


def run(line):
    """Runs one shell line's argv (no shell); the error text when it fails, else None."""
    try:
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{line}: {exc}"
    return f"{line}: {(done.stderr or done.stdout).strip()[:200]}" if done.returncode else None


class NetworkFaults:
    """Plans, applies and heals the faults of one run's hosts; see the module docstring."""

    def __init__(self, layout, seed, fault_s=5.0, latency_ms=50.0, jitter_ms=20.0, loss=0.05,
                 partitions=DEFAULT_PARTITIONS, dry_run=False):
        self.switch, self.hosts = layout["switch"], layout["hosts"]
        self.web_hosts = sorted(name for name in self.hosts if name.startswith("web"))
        self.fault_s, self.latency_ms, self.jitter_ms, self.loss = fault_s, latency_ms, jitter_ms, loss
        self.partitions = partition_pairs(partitions) if isinstance(partitions, str) else list(partitions)
        self.dry_run = dry_run
        self.rng = random.Random(f"{seed}:network")
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._active = {}  # id(fault) -> fault, applied and not healed yet

    @classmethod
    def from_layout(cls, path, seed, **options):
        with open(path, encoding="utf-8") as file:
            return cls(json.load(file), seed, **options)

    # -- what this machine can do -----------------------------------------------------------

    def refusal(self, mix):
        """The one-line reason this machine cannot make a network action of ``mix``, or None."""
        tools = {"partition": ("nft", "nftables"), "oneway": ("nft", "nftables"), "loss": ("nft", "nftables"),
                 "latency": ("tc", "iproute2"), "reset": ("ss", "iproute2")}
        for action in (name for name, weight in mix.items() if weight > 0 and name in tools):
            try:
                installed(*tools[action])
            except Missing as exc:
                return f"chaos action {action} needs {exc}"
        if mix.get("latency") and not self.dry_run:
            probe = shell(["tc", "-n", self.switch, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
            error = run(probe)
            if error:
                return f"chaos action latency needs tc netem, which this kernel refuses ({error})"
            run(shell(["tc", "-n", self.switch, "qdisc", "del", "dev", "lo", "root"]))
        return None

    # -- planning: the seeded choice of hosts and the exact commands -------------------------

    def plan(self, action, target=None):
        """The next fault of ``action``, on the web host ``target`` or a seeded one; a str says why none."""
        webs = [name for name in self.web_hosts if target in (None, name)]
        if not webs:
            return f"no web host {target!r}"
        if action in ("partition", "oneway"):
            first, second = self.rng.choice(self.partitions)
            web = self.rng.choice(webs)
            a, b = (web if role == "web" else role for role in (first, second))
            return self._partition(action, a, b, both_ways=action == "partition")
        host = self.rng.choice(webs)
        if action == "latency":
            return self._latency(host)
        if action == "loss":
            return self._loss(host)
        if action == "reset":
            netns = self.hosts[host]["namespace"]
            return Fault("reset", host, [host], [shell(["ip", "netns", "exec", netns, "ss", "-K", "-t", "state",
                                                        "established"])], [])
        raise ValueError(f"{action!r} is not a network action")

    def _table(self, action, rules):
        """Commands making an nft bridge table of the given rules in the switch, and the one removing it."""
        table = f"f6_{action}_{next(self._numbers)}"
        nft = ["ip", "netns", "exec", self.switch, "nft"]
        commands = [shell([*nft, "add", "table", "bridge", table]),
                    shell([*nft, "add", "chain", "bridge", table, "forward",
                           "{ type filter hook forward priority 0 ; policy accept ; }"])]
        commands += [shell([*nft, "add", "rule", "bridge", table, "forward", *rule]) for rule in rules]
        return commands, [shell([*nft, "delete", "table", "bridge", table])]

    def _partition(self, action, a, b, both_ways):
        rules = [["iifname", a, "oifname", b, "drop"]] + [["iifname", b, "oifname", a, "drop"]] * both_ways
        commands, undo = self._table(action, rules)
        return Fault(action, f"{a}|{b}" if both_ways else f"{a}>{b}", [a, b], commands, undo, self.fault_s)

    def _latency(self, host):
        with self._lock:
            if any(f.action == "latency" and f.target == host for f in self._active.values()):
                return f"{host} is already delayed"
        dev = ["tc", "-n", self.switch, "qdisc"]
        delay = [f"{self.latency_ms:g}ms", f"{self.jitter_ms:g}ms"] + ["distribution", "normal"] * bool(self.jitter_ms)
        return Fault("latency", host, [host], [shell([*dev, "add", "dev", host, "root", "netem", "delay", *delay])],
                     [shell([*dev, "del", "dev", host, "root"])], self.fault_s,
                     {"delay_ms": self.latency_ms, "jitter_ms": self.jitter_ms})

    def _loss(self, host):
        per_mille = round(self.loss * 1000)
        drop = ["numgen", "random", "mod", "1000", "<", str(per_mille), "drop"]
        commands, undo = self._table("loss", [["iifname", host, *drop], ["oifname", host, *drop]])
        return Fault("loss", host, [host], commands, undo, self.fault_s, {"loss": per_mille / 1000})

    # -- acting --------------------------------------------------------------------------------

    def apply(self, fault):
        """Runs fault.commands; on a failure undoes the part applied. Returns the outcome."""
        if self.dry_run:
            return "skipped: dry run"
        if fault.undo:
            with self._lock:
                self._active[id(fault)] = fault  # before the first command: a stop can never miss it
        for line in fault.commands:
            error = run(line)
            if error:
                self.heal(fault)
                return f"error: {error}"
        return "ok"

    def heal(self, fault):
        """Runs fault.undo once (a concurrent or later call does nothing and says so). Returns the outcome."""
        with self._lock:
            if self._active.pop(id(fault), None) is None:
                return "skipped: already healed"
        errors = [error for error in map(run, fault.undo) if error]
        return f"error: {'; '.join(errors)}" if errors else "ok"

    def active(self):
        with self._lock:
            return list(self._active.values())
