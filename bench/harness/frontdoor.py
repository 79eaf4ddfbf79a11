"""Front doors other than this proxy, for ``scripts/check --front``: nginx and HAProxy from the distribution.

    $ scripts/check --front nginx --chaos-mix kill,freeze --hits keyless

    formation = FrontDoorFormation(FormationSpec(front="nginx", web=4, report_dir=out))   # scripts/check --front
    formation.start()   # honcho's formation without its proxy, and the front door on formation.proxy_url

    door = FrontDoor("haproxy-all-retryable", backends=["127.0.0.1:10100", "127.0.0.1:10101"], port=8000, folder=out)
    door.install()    # the package, if missing (or Missing)
    door.start()      # writes front.conf into the run folder, starts it, returns once it answers
    door.url          # http://127.0.0.1:8000
    door.stop()

Each reads a static upstream list (the web instances' fixed ports) and listens
on 127.0.0.1 only; its one upstream is that list, so it can neither relay
elsewhere nor reach Redis. Timeouts and tries are this proxy's own settings
(``PROXY_CONNECT_TIMEOUT``, ``PROXY_TIMEOUT``, ``PROXY_TRIES``, read by
proxy.config), so every front door waits and tries alike; only the retry rule
differs:

- ``nginx``: its default ``proxy_next_upstream error timeout``: a POST is not
  re-sent once sent, a GET is.
- ``nginx-non-idempotent``: ``error timeout non_idempotent``: POSTs too.
- ``haproxy``: ``retry-on conn-failure``: only a connection that failed.
- ``haproxy-all-retryable``: ``retry-on all-retryable-errors`` and ``option
  redispatch``: also after the request was sent (empty response, timeout, 5xx).
"""
import requests

from bench.harness.formation import HonchoFormation
from bench.harness.launch import start
from bench.packages import installed
from bench.runfolder import FRONT_CONF, FRONT_LOG, FRONT_WORK
from proxy.config import Config
from scaler.processes import stop_tree, wait_until

NGINX = """worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream web {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout {connect_ms}ms;
            proxy_read_timeout {timeout_ms}ms;
            proxy_next_upstream {retry};
            proxy_next_upstream_tries {tries};
        }}
    }}
}}
"""

HAPROXY = """global
    maxconn 4096
defaults
    mode http
    timeout connect {connect_ms}ms
    timeout client 30s
    timeout server {timeout_ms}ms
    retries {retries}
frontend front
    bind 127.0.0.1:{port}
    default_backend web
backend web
    balance roundrobin
    {retry}
{servers}
"""

# name: (command, package, config template, retry rule)
DOORS = {
    "nginx": ("nginx", "nginx", NGINX, "error timeout"),
    "nginx-non-idempotent": ("nginx", "nginx", NGINX, "error timeout non_idempotent"),
    "haproxy": ("haproxy", "haproxy", HAPROXY, "retry-on conn-failure"),
    "haproxy-all-retryable": ("haproxy", "haproxy", HAPROXY, "retry-on all-retryable-errors\n    option redispatch"),
}
FRONTS = ("factor6", *DOORS)  # factor6: this proxy, as the Procfile runs it


def config(name, backends, port, work, env=None):
    """The config text of front door ``name`` on ``port`` for ``backends`` (host:port); ``work``: nginx's folder."""
    tool, _, template, retry = DOORS[name]
    proxy = Config.from_env(env)
    if tool == "nginx":
        servers = "\n".join(f"        server {address};" for address in backends)
    else:
        servers = "\n".join(f"    server web{i} {address}" for i, address in enumerate(backends, 1))
    return template.format(work=work, servers=servers, port=port, retry=retry, tries=proxy.tries,
                           retries=proxy.tries - 1, connect_ms=round(proxy.connect_timeout * 1000),
                           timeout_ms=round(proxy.timeout * 1000))


class FrontDoor:
    """One nginx or HAProxy in front of a formation's web instances, its config and output in the run folder."""

    def __init__(self, name, backends, port, folder):
        self.name, self.backends, self.port, self.folder = name, list(backends), port, folder
        self.url = f"http://127.0.0.1:{port}"
        self.popen = self.path = None

    def install(self):
        self.path = installed(*DOORS[self.name][:2])
        return self

    def start(self, abort=None):
        tool, path = DOORS[self.name][0], self.path or self.install().path
        work = self.folder / FRONT_WORK
        work.mkdir(exist_ok=True)
        conf = self.folder / FRONT_CONF
        conf.write_text(config(self.name, self.backends, self.port, work))
        command = [path, "-p", str(work), "-c", str(conf)] if tool == "nginx" else [path, "-db", "-f", str(conf)]
        self.popen = start(command, log_path=self.folder / FRONT_LOG)

        def still_running():
            if abort:
                abort()
            if self.popen.poll() is not None:
                raise TimeoutError(f"{tool} exited with {self.popen.returncode}; see {self.folder / FRONT_LOG}")

        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=1).ok, timeout=30, what=self.name,
                   abort=still_running)
        return self

    def stop(self):
        if self.popen:
            stop_tree(self.popen.pid)


class FrontDoorFormation(HonchoFormation):
    """honcho's formation with the Procfile's proxy left out and ``spec.front`` serving ``proxy_url`` instead,
    over the web instances' fixed ports: honcho's ``-p`` base + 100 per type before ``web`` + 1 per instance."""

    def __init__(self, spec, load=None):
        super().__init__(spec, load)
        self.front = None

    def types(self):
        return [kind for kind in super().types() if kind != "proxy"]

    def prepare(self, web_addresses):
        self.front = FrontDoor(self.spec.front, web_addresses, self.proxy_port, self.spec.report_dir).install()

    def serve(self, abort):
        self.front.start(abort=abort)

    def stop(self):
        if self.front:
            self.front.stop()
        super().stop()
