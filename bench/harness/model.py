"""The harness's data model: what formation a check runs, what load and chaos it puts on it, and the seam every
kind of formation fits.

    spec = FormationSpec(web=4, session_store="memory", report_dir=Path("reports/x"))
    load = LoadSpec(duration=10, chaos_rate=0, workload="session")
    formation = build_formation(spec, load)     # the kind spec.hosts / spec.front / spec.engine names
    formation.start(abort=signals.check)        # returns once it serves
    formation.proxy_url, formation.redis_url    # where Locust sends hits, where it reads the ledger
    formation.stop()

Both specs are frozen values, built once (bench.harness.check parses the command line and the environment into
them; a benchmark writes ``FormationSpec(web=8)`` or ``dataclasses.replace(spec, web=8)``). Nothing past the
parser sees an argparse Namespace. A new kind of formation is one module with a class that takes a
FormationSpec and a LoadSpec (``Kind(spec, load)``: a kind that runs chaos agents of its own reads the chaos
schedule from the load) and has the ``Formation`` protocol's members, and one line in ``KINDS``.
"""
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable

from bench.chaos.network import DEFAULT_PARTITIONS
from common.settings import WEB_WORKERS


@dataclass(frozen=True)
class FormationSpec:
    """One formation: its processes and the settings they read. Defaults are ``scripts/check``'s."""
    engine: str = "honcho"  # what runs the processes: honcho on this machine (a key of ENGINES)
    web: int = 4  # web instances
    workers: int = WEB_WORKERS  # gunicorn workers per instance
    mode: str = "atomic"  # HIT_MODE; seed and local are wrong on purpose
    session_store: str = "redis"  # SESSION_STORE; memory is wrong on purpose
    scratch: str = "delete"  # SCRATCH; keep is wrong on purpose
    redis_persistence: str = "always"  # REDIS_PERSISTENCE; none forgets on a restart (wrong on purpose)
    redis: str = "single"  # one server, or "sentinel": a primary, two replicas and three Sentinels
    front: str = "factor6"  # the front door: this proxy, or one of bench.harness.frontdoor's DOORS
    proxy_sticky: bool = False  # PROXY_STICKY=cookie: each visitor pinned to one instance
    hits: str = "keyed"  # what a hit is (bench.arguments.HIT_KINDS); keyless-retried also stops the proxy's keys
    autoscale: Optional[int] = None  # run the autoscaler between ``web`` and this many instances
    hosts: bool = False  # one network-namespace host per role (bench.harness.hosts)
    require_hosts: bool = False  # hosts, failing (not skipping) where they cannot be made
    fault_s: float = 5.0  # seconds a network fault lasts (hosts)
    partitions: str = DEFAULT_PARTITIONS  # host pairs a partition cuts (hosts)
    report_dir: Optional[Path] = None  # the run folder: logs, env file, Redis data, scratch

    @property
    def kind(self):
        """The key of KINDS this spec runs as: hosts, else a front door other than factor6's proxy, else the engine."""
        if self.hosts or self.require_hosts:
            return "hosts"
        if self.front != "factor6":
            return "front"
        return self.engine


@dataclass(frozen=True)
class LoadSpec:
    """The load and chaos of one run: Locust's users and the chaos monkey's schedule. Defaults are the check's."""
    duration: float = 30.0  # seconds of load
    users: int = 16
    processes: int = 0  # Locust worker processes (0: one process)
    chaos_rate: float = 1.0  # chaos actions per second (0: none)
    chaos_mix: str = "kill,term,reload,freeze,scale"  # actions, optionally weighted (bench.chaos.vocabulary)
    seed: int = 1  # of the chaos schedule
    workload: str = "hits"  # comma-separated workloads (bench.verdict.workloads)
    upload_size: str = "1M"  # bytes per upload of the upload workload
    min_success: float = 0.5  # least share of tries that must succeed, else no verdict
    shape: Optional[str] = None  # a Locust load shape (bench/shapes.py) instead of steady users


@dataclass(frozen=True)
class CheckSpec:
    """What one ``scripts/check`` runs, and where each setting that is not the default came from."""
    formation: FormationSpec
    load: LoadSpec
    origins: Mapping[str, str] = field(default_factory=dict)  # field name -> "--flag" or "VARIABLE in the environment"


@dataclass(frozen=True)
class ChaosTarget:
    """How a run's chaos reaches a formation's processes.

    ``embedded``: Locust's own chaos monkey acts (the processes are on the machine Locust runs on and are found
    through the registry in ``redis_url``); else the formation runs chaos agents of its own next to its processes,
    started in ``start()`` from the LoadSpec it was given, and Locust's monkey stays idle (rate 0).
    ``env``: what a monkey needs besides the Redis URL to find and signal those processes.
    """
    embedded: bool = True
    env: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Formation(Protocol):
    """What ``scripts/check`` needs of any kind of formation (honcho, front door, hosts; a Swarm engine later)."""
    spec: FormationSpec
    proxy_url: str  # where clients send requests
    redis_url: str  # the formation's Redis: its ledger and registry
    chaos_target: ChaosTarget

    def start(self, abort: Optional[Callable[[], None]] = None) -> None:
        """Returns once every web instance is registered and the front door routes to all; ``abort()`` may raise
        to stop waiting. TimeoutError when it does not come up."""

    def stop(self) -> None:
        """Stops every process it started (also after a failed or partial start) and removes what it made."""

    def exited(self) -> Optional[int]:
        """An exit status once the formation has stopped by itself during the run, else None."""

    def instances(self) -> list:
        """The live web instances, as dicts with ``name``, ``address`` and ``served``."""

    def wrap(self, command: Sequence[str]) -> list:
        """``command`` as it must run to reach this formation (on its load host, told where its Sentinels are)."""


# kind -> "module:class" of its Formation; imported only when chosen, so no kind loads another's dependencies.
KINDS = {
    "honcho": "bench.harness.formation:HonchoFormation",
    "front": "bench.harness.frontdoor:FrontDoorFormation",
    "hosts": "bench.harness.hosts:HostsFormation",
    "swarm": "bench.harness.swarm:SwarmFormation",
    "compose": "bench.harness.swarm:ComposeFormation",
}
ENGINES = tuple(kind for kind in KINDS if kind not in ("front", "hosts"))  # --engine's; the others have flags


def build_formation(spec: FormationSpec, load: Optional[LoadSpec] = None) -> Formation:
    """The formation ``spec`` describes, not started; ``load`` for a kind that runs its own chaos agents."""
    module, name = KINDS[spec.kind].split(":")
    return getattr(importlib.import_module(module), name)(spec, load or LoadSpec())
