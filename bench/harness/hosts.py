"""scripts/check --hosts: the formation spread over hosts made of network namespaces on this machine.

    $ scripts/check --hosts --web 4 --duration 60 --chaos-rate 1      # as root; skips (exit 0) where it cannot
    hosts (network namespaces on 198.18.0.0/15, no route out):
      redis  198.18.0.1  redis
      web1   198.18.0.2  web.1 web.4 chaos
      ...

    formation = HostsFormation(FormationSpec(hosts=True, report_dir=out), LoadSpec())   # bench.harness.model
    formation.start()                         # raises Unavailable where namespaces cannot be made
    subprocess.run(formation.wrap(["locust", ...]))   # Locust runs on the load host
    formation.stop()                          # every process, namespace, veth pair and the bridge

Hosts: ``redis``; ``web1``..``web3`` (instances dealt round-robin, each its own
gunicorn master); ``proxy``; ``load`` for Locust. Each process runs its
Procfile command on its host (bench/netns.py) with nothing but PATH, HOME,
LANG and its settings in its environment, and every setting that names
another process is an address on another host. The web instances get the
formation's session and upload settings, one ``SECRET_KEY`` for all of them,
and the proxy its own (``--proxy-sticky``), as bench.harness.formation writes
them into formation.env. A chaos agent, the Procfile's
``chaos`` type, runs on each web host: a process table is per machine, so
the monkey embedded in Locust would find nothing to act on from the load host.
The network actions of the mix (partition, oneway, latency, loss, reset) go to
one more agent, ``python -m bench.chaos --layout hosts.json``, run in this
machine's own namespace, where it reaches the switch; the rate is split
between the two kinds by their weights. It gets SIGTERM should the harness die,
and heals what it applied; the namespaces' removal takes any fault left with it.

The layout, every process's settings and the hits each instance served go to
``<report dir>/hosts.json``; the processes' output to ``<report dir>/hosts/``.

    $ python -m bench.harness.hosts instances --redis-url redis://198.18.0.1:6379/0   # run on a host: live instances
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
from collections import defaultdict

from bench.chaos.network import NetworkFaults, Refused
from bench.chaos.vocabulary import parse_mix, split_mix
from bench.harness.formation import healthy_backends, proxy_state_env, remove_scratch, served, web_state_env
from bench.harness.launch import start
from bench.harness.model import ChaosTarget, LoadSpec
from bench.harness.netns import SUBNET, Network, Unavailable, remove_leftovers, unavailable
from bench.paths import BIN, PROCFILE, ROOT
from bench.runfolder import CHAOS, HOSTS_JSON, HOSTS_LOGS, REDIS_DATA, read_jsonl
from scaler.instances import die_with_parent
from scaler.procfile import command_of
from scaler.processes import stop_tree, wait_until
from common.redis_client import connect
from common.registry import Registry

REDIS_PORT, WEB_PORT, PROXY_PORT = 6379, 5000, 8000  # every host has its own ports: no need to hunt for free ones
MAX_WEB_HOSTS = 3
PROXY_TIMEOUT_S = 2  # a web host cut off mid-request costs a keyed hit 2 s and a retry, not the default 30 s
PASSED_ON = ("HOME", "LANG", "LC_ALL", "TZ")  # from the machine's environment, besides PATH


class HostsFormation:
    """bench.harness.formation.Formation's interface, on hosts; see the module docstring."""

    # Locust's monkey, on the load host, would find no process: agents on the web hosts and this machine act.
    chaos_target = ChaosTarget(embedded=False)

    def __init__(self, spec, load=None):
        self.spec, self.load = spec, load or LoadSpec()
        self.web_hosts = [f"web{n}" for n in range(1, min(MAX_WEB_HOSTS, max(1, spec.web)) + 1)]
        self.network = Network(["redis", *self.web_hosts, "proxy", "load"])
        hosts = self.network.hosts
        self.redis_url = f"redis://{hosts['redis'].address}:{REDIS_PORT}/0"
        self.proxy_url = f"http://{hosts['proxy'].address}:{PROXY_PORT}"
        self.base_env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                         **{k: os.environ[k] for k in PASSED_ON if k in os.environ}}
        self.layout = {"subnet": str(SUBNET), "hosts": {}}
        self.popens = []
        self.built = False  # set before the network is made, so that stop() removes even half of one

    def start(self, abort=None):
        spec, load, out = self.spec, self.load, self.spec.report_dir
        reason = unavailable()
        if reason:
            raise Unavailable(reason)
        remove_leftovers()
        self.built = True
        self.network.create()
        self.layout["switch"] = self.network.switch
        self.layout["hosts"] = {name: {"address": host.address, "namespace": host.netns, "processes": {}}
                                for name, host in self.network.hosts.items()}
        processes_mix, network_mix = split_mix(parse_mix(load.chaos_mix))
        refusal = load.chaos_rate > 0 and NetworkFaults(self.layout, load.seed).refusal(network_mix)
        if refusal:
            raise Refused(refusal)
        (out / HOSTS_LOGS).mkdir(parents=True, exist_ok=True)
        redis_host = self.network.hosts["redis"].address
        self.run("redis", "redis", command_of(PROCFILE, "redis"), REDIS_BIND=redis_host, PORT_REDIS=REDIS_PORT,
                 REDIS_DATA=out / REDIS_DATA, REDIS_PERSISTENCE=spec.redis_persistence)
        state = web_state_env(spec)  # once: every instance shares the formation's secret
        for number in range(1, spec.web + 1):
            host = self.web_hosts[(number - 1) % len(self.web_hosts)]
            self.run(host, f"web.{number}", command_of(PROCFILE, "web"), PS=f"web.{number}",
                     PORT=WEB_PORT + (number - 1) // len(self.web_hosts),
                     BIND_HOST=self.network.hosts[host].address, REDIS_URL=self.redis_url,
                     HIT_MODE=spec.mode, WEB_WORKERS=spec.workers, **state)
        self.run("proxy", "proxy", command_of(PROCFILE, "proxy"), PROXY_HOST=self.network.hosts["proxy"].address,
                 PROXY_PORT=PROXY_PORT, PROXY_ALLOW=SUBNET, REDIS_URL=self.redis_url, PROXY_TIMEOUT=PROXY_TIMEOUT_S,
                 PROXY_STAMP_KEYS=int(spec.hits != "keyless-retried"),
                 # The shell's choice passes on (recorded in hosts.json): round robin keeps feeding a cut host.
                 PROXY_BALANCE=os.environ.get("PROXY_BALANCE", "least-loaded"), **proxy_state_env(spec))
        self.layout["instances"] = self.listing("--wait-for", spec.web, "--proxy-url", self.proxy_url)
        total = sum(processes_mix.values()) + sum(network_mix.values())
        if load.chaos_rate > 0 and processes_mix:
            log = shlex.quote(str(out / CHAOS))
            rate = load.chaos_rate * sum(processes_mix.values()) / total
            for offset, host in enumerate(self.web_hosts):
                # The schedule's rate is the formation's, shared out; each host's agent gets a seed of its own.
                self.run(host, "chaos", f"{command_of(PROCFILE, 'chaos')} --duration {load.duration:g} --log {log}",
                         CHAOS_RATE=rate / len(self.web_hosts), CHAOS_MIX=mix_text(processes_mix),
                         CHAOS_SEED=load.seed + offset, REDIS_URL=self.redis_url)
        self.write_layout()
        if load.chaos_rate > 0 and network_mix:
            self.run_network_agent(load.chaos_rate * sum(network_mix.values()) / total, mix_text(network_mix))
        print(self.describe(), flush=True)

    def run(self, host, name, command, **settings):
        """Runs a Procfile command on host with only base_env and settings; output to hosts/<host>.<name>.log."""
        settings = {key: str(value) for key, value in settings.items()}
        self.popens.append(start(self.network.hosts[host].command(["sh", "-c", command], {**self.base_env, **settings}),
                                 log_path=self.spec.report_dir / HOSTS_LOGS / f"{host}.{name}.log"))
        self.layout["hosts"][host]["processes"][name] = {"command": command, "settings": settings}

    def run_network_agent(self, rate, mix):
        """The network chaos agent, in this machine's namespace: it reads hosts.json, so that goes first."""
        spec, out = self.spec, self.spec.report_dir
        command = [sys.executable, "-m", "bench.chaos", "--layout", out / HOSTS_JSON, "--rate", f"{rate:g}",
                   "--mix", mix, "--seed", self.load.seed, "--duration", f"{self.load.duration:g}", "--log",
                   out / CHAOS, "--fault-s", f"{spec.fault_s:g}", "--partitions", spec.partitions]
        self.popens.append(start(command, log_path=out / HOSTS_LOGS / "machine.chaos-network.log",
                                 preexec_fn=die_with_parent()))
        self.layout["network_agent"] = shlex.join(map(str, command))
        self.write_layout()

    def exited(self):
        """None: the hosts' processes are not watched one by one (a dead one shows in the verdict)."""
        return None

    def instances(self):
        return self.listing(timeout=15)

    def listing(self, *options, timeout=120):
        """The registry's live instances, read from the load host (this machine has no leg on the network)."""
        command = ["python", "-m", "bench.harness.hosts", "instances", "--redis-url", self.redis_url, *map(str, options)]
        try:
            done = subprocess.run(self.wrap(command), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"no answer from the registry within {timeout}s") from None
        if done.returncode:
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise TimeoutError(f"{reason} (the processes' output: {self.spec.report_dir / HOSTS_LOGS})")
        return json.loads(done.stdout)

    def wrap(self, command):
        """command, run on the load host."""
        return self.network.hosts["load"].command(command, self.base_env)

    def host_of(self, address):
        return next(name for name, host in self.network.hosts.items() if address.startswith(host.address + ":"))

    def describe(self):
        lines = [f"hosts (network namespaces on {SUBNET}, no route out):"]
        for name, host in self.layout["hosts"].items():
            lines.append(f"  {name:<6} {host['address']:<12} {' '.join(host['processes']) or 'Locust, started by the harness'}")
        return "\n".join(lines)

    def served_per_host(self):
        per_host = defaultdict(dict)
        for instance in self.layout.get("served", []):
            per_host[self.host_of(instance["address"])][instance["name"]] = instance["served"]
        return "; ".join(f"{host}: {sum(names.values())} ({', '.join(f'{n} {s}' for n, s in sorted(names.items()))})"
                         for host, names in sorted(per_host.items()))

    def write_layout(self):
        (self.spec.report_dir / HOSTS_JSON).write_text(json.dumps(self.layout, indent=1) + "\n")

    def stop(self):
        try:
            if "instances" in self.layout:  # the formation came up: record what each instance served
                self.layout["served"] = self.instances()
                self.write_layout()
                print(f"hits served per web host: {self.served_per_host()}", flush=True)
        except (OSError, ValueError) as exc:  # TimeoutError included
            print(f"could not read what each instance served: {exc}", flush=True)
        finally:
            for popen in reversed(self.popens):  # chaos agents first: they thaw what they froze, heal what they cut
                stop_tree(popen.pid)
            if "instances" in self.layout:  # what the network agent applied and undid, command by command
                self.layout["faults"] = [e for e in read_jsonl(self.spec.report_dir / CHAOS) if "commands" in e]
                self.write_layout()
            if self.built:
                self.network.remove()
            remove_scratch(self.spec)


def mix_text(mix):
    return ",".join(f"{name}={weight:g}" for name, weight in mix.items())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.harness.hosts", description="Tools run on a namespace host.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("instances", help="print the registry's live instances as JSON")
    listing.add_argument("--redis-url", required=True)
    listing.add_argument("--wait-for", type=int, default=0, help="first wait for this many, all up in the proxy")
    listing.add_argument("--proxy-url")
    args = parser.parse_args(argv)
    client = connect(args.redis_url)
    if args.wait_for:
        wait_until(lambda: len(Registry(client).instances()) == args.wait_for, timeout=60,
                   what=f"{args.wait_for} web instances")
        wait_until(lambda: healthy_backends(args.proxy_url) == args.wait_for, timeout=30, what="the proxy")
    print(json.dumps(served(client)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
