"""scripts/check's settings: its command line and the environment, read once into a CheckSpec (bench.harness.model).

    check = parse_args(sys.argv[1:])     # check.formation, check.load, and check.origins: where each came from
    scripts_check(formation, load)       # the way back, for benchmarks: the command that runs those specs

A formation setting the processes read from the environment (``SESSION_STORE``,
``HIT_MODE``, ``SCRATCH``, ``WEB_WORKERS``, ``REDIS_PERSISTENCE``,
``PROXY_STICKY``, and ``AUTOSCALE_MAX`` for a bare ``--autoscale``) is taken
from there when its flag is absent; a flag and an environment value that
disagree are refused in one line, like every bad value, before anything
starts. Nothing past this module sees an argparse Namespace.

    >>> values, origins = resolve(parser(), {"web": 2}, {"SESSION_STORE": "memory"})
    >>> values["web"], values["session_store"], values["duration"]
    (2, 'memory', 30.0)
    >>> origins
    {'web': '--web', 'session_store': 'SESSION_STORE in the environment'}
    >>> command(CheckSpec(FormationSpec(web=2), LoadSpec(duration=10)))  # doctest: +NORMALIZE_WHITESPACE
    ['--web', '2', '--workers', '2', '--mode', 'atomic', '--session-store', 'redis', '--scratch', 'delete',
     '--redis-persistence', 'always', '--no-proxy-sticky', '--duration', '10']

A benchmark's command names every setting the environment could set, so that a
shell variable that disagrees is refused instead of changing the run unseen.
"""
import argparse
import dataclasses
import os

from backing.config import PERSISTENCE
from bench.arguments import HIT_KINDS, OneLineParser, chaos_mix, new_run_folder, number, share, writable_folder
from bench.chaos.vocabulary import ACTIONS, network_refusal, parse_mix
from bench.harness.frontdoor import FRONTS
from bench.harness.model import ENGINES, CheckSpec, FormationSpec, LoadSpec
from bench.paths import ROOT
from bench.verdict.workloads import WORKLOADS
from bench.verdict.workloads import parse as parse_workloads
from scaler.config import AutoscaleConfig
from web.config import HIT_MODES, SCRATCH_MODES, SESSION_STORES

FORMATION = {f.name: f.default for f in dataclasses.fields(FormationSpec)}
LOAD = {f.name: f.default for f in dataclasses.fields(LoadSpec)}
DEFAULTS = {**FORMATION, **LOAD}
# spec field -> the variable the formation's processes read it from (web.config, backing.config, proxy.config,
# scaler.config); PROXY_STICKY's words are the proxy's own.
ENVIRONMENT = {"workers": "WEB_WORKERS", "mode": "HIT_MODE", "session_store": "SESSION_STORE", "scratch": "SCRATCH",
               "redis_persistence": "REDIS_PERSISTENCE", "proxy_sticky": "PROXY_STICKY", "autoscale": "AUTOSCALE_MAX"}
STICKY = {"cookie": True, "none": False}
UNSET = object()  # a flag not on the command line
BARE = 0  # --autoscale without MAX: AUTOSCALE_MAX from the environment, else 8
AUTOSCALE_MAX = 8


def parser():
    """The options, their defaults the specs' own (bench.harness.model)."""
    p = OneLineParser(prog="scripts/check", description="bring up a formation, hit it under chaos, check every hit,"
                      " report, clean up (bench/harness/check.py). Formation settings the processes read from the"
                      " environment are taken from there when their flag is absent.")
    add = p.add_argument
    add("--web", type=number(int, least=1, hint=" (a check of no instances proves nothing)"), default=FORMATION["web"],
        help="web instances (default %(default)s)")
    add("--duration", type=number(float, above=0), default=LOAD["duration"],
        help="seconds of load (default %(default)s)")
    add("--users", type=number(int, least=1), default=LOAD["users"], help="Locust users (default %(default)s)")
    add("--processes", type=number(int, least=0), default=LOAD["processes"],
        help="Locust worker processes (0: one process)")
    add("--chaos-rate", type=number(float, least=0, hint=" (0: no chaos)"), default=LOAD["chaos_rate"],
        help="chaos actions per second (0: none)")
    add("--chaos-mix", type=chaos_mix, default=LOAD["chaos_mix"],
        help=f"actions, optionally weighted, of {', '.join(ACTIONS)}")
    add("--seed", type=int, default=LOAD["seed"], help="seed of the chaos schedule")
    add("--engine", choices=ENGINES, default=FORMATION["engine"], help="what runs the formation (default %(default)s)")
    add("--mode", choices=HIT_MODES, default=FORMATION["mode"],
        help="HIT_MODE of the web instances; seed and local are wrong on purpose")
    add("--workers", type=number(int, least=1), default=FORMATION["workers"],
        help="WEB_WORKERS: gunicorn workers per instance")
    add("--min-success", type=share, default=LOAD["min_success"],
        help="least share of tries that must succeed, else no verdict (default %(default)s)")
    add("--report-dir", type=writable_folder, help="default: reports/<time>-<mode>-<random>")
    add("--redis-persistence", choices=PERSISTENCE, default=FORMATION["redis_persistence"],
        help="the formation's REDIS_PERSISTENCE; none forgets on a restart (wrong on purpose)")
    add("--shape", help="a Locust load shape from bench/shapes.py instead of steady users: spike")
    add("--autoscale", type=number(int, least=1), nargs="?", const=BARE, metavar="MAX",
        help=f"run the autoscaler, between --web and MAX (AUTOSCALE_MAX, else {AUTOSCALE_MAX}) instances")
    add("--redis", choices=("single", "sentinel"), default=FORMATION["redis"],
        help="one server, or a primary, two replicas and three Sentinels (bench/harness/replicated.py)")
    add("--hosts", action="store_true", help="one host per role, made of network namespaces (root); skipped where"
        " impossible")
    add("--require-hosts", action="store_true", help="--hosts, failing where it cannot run")
    add("--fault-s", type=number(float, above=0), default=FORMATION["fault_s"],
        help="seconds a network fault lasts (--hosts)")
    add("--partitions", default=FORMATION["partitions"], help="host pairs a partition cuts (--hosts)")
    add("--workload", default=LOAD["workload"],
        help=f"comma-separated workloads to run and check: {', '.join(WORKLOADS)} (default %(default)s)")
    add("--session-store", choices=SESSION_STORES, default=FORMATION["session_store"],
        help="SESSION_STORE of the web instances; memory is wrong on purpose")
    add("--scratch", choices=SCRATCH_MODES, default=FORMATION["scratch"],
        help="SCRATCH of the web instances; keep is wrong on purpose")
    add("--upload-size", default=LOAD["upload_size"], help="bytes per upload of the upload workload: 512K, 10M ...")
    add("--proxy-sticky", action=argparse.BooleanOptionalAction,
        help="the proxy pins each visitor to one instance by a cookie (PROXY_STICKY=cookie; default none)")
    add("--front", choices=FRONTS, default=FORMATION["front"],
        help="the front door: this proxy, or nginx or HAProxy over fixed ports (no --autoscale)")
    add("--hits", choices=HIT_KINDS, default=FORMATION["hits"],
        help="keyed (POST /hits with a key, retried), keyless (without, once), keyless-retried"
             " (without, retried, and the proxy stamps no key: wrong on purpose) or page (GET /, once)")
    return p


def option(name):
    return "--" + name.replace("_", "-")


def from_environment(p, name, text):
    """The value of ``name`` as its variable gives it, refused in one line with the flag's own words."""
    variable = ENVIRONMENT[name]
    if name == "proxy_sticky":
        if text not in STICKY:
            p.error(f"{variable}={text} in the environment: must be one of {', '.join(STICKY)}")
        return STICKY[text]
    action = next(a for a in p._actions if a.dest == name)
    try:
        value = action.type(text) if action.type else text
    except argparse.ArgumentTypeError as exc:
        p.error(f"{variable}={text} in the environment: {exc}")
    if action.choices and value not in action.choices:
        p.error(f"{variable}={text} in the environment: must be one of {', '.join(action.choices)}")
    return value


def resolve(p, given, env):
    """Each setting's value (the flag, else the environment, else the default) and, where not the default, its
    origin; a flag and a variable that disagree end here."""
    values, origins = {}, {}
    for name, default in DEFAULTS.items():
        flag, variable = given.get(name, UNSET), ENVIRONMENT.get(name)
        text = env.get(variable, "").strip() if variable else ""
        from_env = from_environment(p, name, text) if text else UNSET
        if name == "autoscale" and flag is UNSET:
            from_env = UNSET  # AUTOSCALE_MAX alone starts no autoscaler
        if name == "autoscale" and flag is not UNSET and flag == BARE:
            flag = UNSET if from_env is not UNSET else AUTOSCALE_MAX
        if flag is not UNSET and from_env is not UNSET and flag != from_env:
            shown = option(name) if flag is True else "--no-" + option(name)[2:] if flag is False else \
                f"{option(name)} {flag}"
            p.error(f"{shown} and {variable}={text} in the environment disagree; give one, or the same")
        if flag is not UNSET:
            values[name], origin = flag, option(name)
        elif from_env is not UNSET:
            values[name], origin = from_env, f"{variable} in the environment"
        else:
            values[name], origin = default, None
        if values[name] != default:
            origins[name] = origin
    return values, origins


def parse_args(argv=None, env=None):
    """The check's CheckSpec; a bad value ends here, in one line with exit status 2, before anything starts."""
    env = os.environ if env is None else env
    p = parser()
    given = p.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(DEFAULTS, UNSET)))
    values, origins = resolve(p, {k: v for k, v in vars(given).items() if v is not UNSET}, env)
    if values["front"] != "factor6" and (values["autoscale"] or values["hosts"] or values["require_hosts"]):
        p.error(f"--front {values['front']} reads a static list of instances: no --autoscale, no --hosts")
    if values["autoscale"] and values["engine"] == "compose":
        p.error("--autoscale: --engine compose has no autoscaler; use --engine swarm (docker service scale)")
    if values["autoscale"]:
        try:  # the AUTOSCALE_* settings the autoscaler will read, checked before anything starts
            AutoscaleConfig.from_env({**env, "AUTOSCALE_MIN": str(values["web"]),
                                      "AUTOSCALE_MAX": str(max(values["autoscale"], values["web"]))})
        except ValueError as exc:
            p.error(f"--autoscale: {exc}")
    if values["front"] != "factor6" and values["proxy_sticky"]:
        given = ("PROXY_STICKY=cookie in the environment" if "environment" in origins["proxy_sticky"]
                 else "--proxy-sticky")
        p.error(f"{given} is this proxy's setting; --front {values['front']} would ignore it")
    try:
        values["workload"] = ",".join(parse_workloads(values["workload"]))
    except ValueError as exc:
        p.error(f"--workload: {exc}")
    values["hosts"] = values["hosts"] or values["require_hosts"]
    if values["hosts"] and values["redis"] == "sentinel":
        p.error("--redis sentinel runs on loopback only; --hosts with Sentinel is not built yet")
    refusal = not values["hosts"] and network_refusal(parse_mix(values["chaos_mix"]))
    if refusal:
        p.error(refusal)
    values["report_dir"] = values["report_dir"] or new_run_folder(p, values["mode"])
    return CheckSpec(FormationSpec(**{k: values[k] for k in FORMATION}), LoadSpec(**{k: values[k] for k in LOAD}),
                     origins)


def scripts_check(formation, load):
    """The ``scripts/check`` command line that runs ``formation`` under ``load``: what a benchmark starts."""
    return [str(ROOT / "scripts/check"), *command(CheckSpec(formation, load))]


def command(check):
    """The scripts/check options that make ``check``: each setting not the default, and every one the environment
    could set, so that a shell's variable that disagrees is refused instead of changing the run."""
    values = {**dataclasses.asdict(check.formation), **dataclasses.asdict(check.load)}
    argv = []
    for name, value in values.items():
        if value == DEFAULTS[name] and name not in ENVIRONMENT or value is None:
            continue
        if isinstance(value, bool):
            argv += [option(name) if value else "--no-" + option(name)[2:]] if name in ENVIRONMENT or value else []
        else:
            argv += [option(name), f"{value:g}" if isinstance(value, float) else str(value)]
    return argv
