"""What to probe in an app: its Procfile and optional factor6.toml, read into frozen values or refused in one line.

    >>> spec = load("examples/stateless-redis")
    >>> spec.app.command, spec.app.instances, spec.redis, [probe.name for probe in spec.probes]
    ('exec gunicorn --bind 127.0.0.1:$PORT --workers 2 app:app', 3, True, ['records'])
    >>> spec.probes[0].write.capture, spec.probes[0].unique
    ((('id', 'json:id'),), 'json:id')

A mistake is refused before anything starts, in one line naming the file, the line and the key:

    >>> parse('[app]\\ninstances = 1\\n', "factor6.toml")
    Traceback (most recent call last):
    ...
    bench.probe.spec.SpecError: factor6.toml:2: app.instances: at least 2 instances, not 1
    >>> parse('[[probe]]\\nname = "posts"\\nwrite = { method = "POST", path = "/posts", captur = { id = "json:id" } }\\n'
    ...       'read = { method = "GET", path = "/posts/{id}" }\\n', "factor6.toml")
    Traceback (most recent call last):
    ...
    bench.probe.spec.SpecError: factor6.toml:3: probe 'posts' write.captur: unknown key; did you mean capture? (known: ...)

The shape is issue 22's; docs/reference/factor6-toml.md lists every key. Without a factor6.toml the
spec has no probes (zero-config: factor6 looks for state on its own). The command is the Procfile's
line for the process (``web``), run through ``sh`` as honcho runs it, unless ``command`` is given.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from bench.probe.steps import HEADER, NAME, RESERVED, TOKEN, VISITOR, WRITTEN_SHA256, check_source, placeholders
from bench.probe.tomlines import line_of
from scaler.procfile import command_of

SPEC_FILE, PROCFILE = "factor6.toml", "Procfile"
TOP_KEYS = ("app", "backing", "probe")
APP_KEYS = ("process", "instances", "ready", "ready_timeout", "settle", "env")
BACKING_KEYS = ("redis",)
PROBE_KEYS = ("name", "setup", "write", "read", "unique")
STEP_KEYS = ("method", "path", "json", "form", "file", "file_field", "headers", "expect", "capture", "contains",
             "equals", "sha256")
BODIES = ("json", "form", "file")
FILE_KEYS = ("size", "field", "file_field")
MAX_INSTANCES = 16
PORT = re.compile(r"\$\{?PORT\b")  # $PORT, ${PORT}, ${PORT:-5000}
METHOD = re.compile(r"[A-Z]+")
PROCESS = re.compile(r"[A-Za-z0-9_-]+")  # honcho's Procfile names
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class SpecError(ValueError):
    """A spec refused: one line, ``file:line: key: reason`` (the line left out where there is none)."""

    @classmethod
    def at(cls, file, line, key, reason):
        return cls(f"{file}{f':{line}' if line else ''}: {key}: {reason}")


@dataclass(frozen=True)
class Step:
    """One request and what its answer must be. ``headers``, ``capture`` (name, source) and ``equals``
    (source, template) are tuples of pairs; ``json`` and ``form`` are templates (do not mutate them)."""
    method: str
    path: str
    json: object = None
    form: dict | None = None
    file_size: int | None = None
    file_field: str = "file"
    headers: tuple = ()
    expect: tuple = (200,)
    capture: tuple = ()
    contains: str | None = None
    equals: tuple = ()
    sha256: str | None = None


@dataclass(frozen=True)
class Probe:
    """A visitor's ``setup`` steps (once), then per write: ``write`` on one instance, ``read`` on another.
    ``unique`` is a capture source no two acknowledged writes' answers may share (None: no such rule)."""
    name: str
    setup: tuple
    write: Step
    read: Step
    unique: str | None = None


@dataclass(frozen=True)
class AppSpec:
    """How to run one instance: ``command`` through ``sh`` in (a copy of) ``app_dir``, with ``PORT`` and ``env``.
    ``names_port`` is False for a Procfile line that leaves ``$PORT`` to the app (gunicorn, ``process.env.PORT``)."""
    app_dir: Path
    command: str
    process: str = "web"
    instances: int = 3
    ready: str = "/"
    ready_timeout: float = 60.0
    settle: float = 1.0
    env: tuple = ()
    names_port: bool = True


@dataclass(frozen=True)
class Spec:
    """The app, whether it gets factor6's Redis, and its probes (none: zero-config). ``file``: the factor6.toml read."""
    app: AppSpec
    redis: bool
    probes: tuple
    file: Path | None = None


def load(app_dir, command=None, process=None, instances=None):
    """The Spec of the app in ``app_dir``; the arguments, when given, win over factor6.toml (flags)."""
    app_dir = Path(app_dir)
    if not app_dir.is_dir():
        raise SpecError(f"{app_dir}: no such directory (APP_DIR holds the app's Procfile and factor6.toml)")
    file = app_dir / SPEC_FILE
    text = text_of(file) if file.is_file() else ""
    settings, redis, probes = parse(text, str(file))
    if process is not None:
        if not PROCESS.fullmatch(process):
            raise SpecError(f"--process: {process!r} is no Procfile process name (letters, digits, _ and -)")
        settings["process"] = process
    if instances is not None:
        if not (isinstance(instances, int) and 2 <= instances <= MAX_INSTANCES):
            raise SpecError(f"--instances: from 2 to {MAX_INSTANCES} instances, not {instances}")
        settings["instances"] = instances
    name = settings.get("process", "web")
    if command is not None:
        if not PORT.search(command):
            raise SpecError(f"--command: {command!r} names no $PORT (the port factor6 gives each instance)")
        line = command
    else:
        procfile = app_dir / PROCFILE
        if not procfile.is_file():
            raise SpecError(f"{procfile}: no such file (or give --command 'CMD with $PORT')")
        text_of(procfile)  # not UTF-8: refused here in one line
        try:
            line = command_of(procfile, name)
        except ValueError as exc:
            if process is None and "process" in settings:  # factor6.toml named it: point at that line
                raise SpecError.at(file, line_of(text, ("app", "process")), "app.process", exc) from None
            raise SpecError(str(exc)) from None
        except AssertionError as exc:  # honcho's parser asserts that no process type is named twice
            raise SpecError(f"{procfile}: {exc}") from None
    app = AppSpec(app_dir, line, names_port=bool(PORT.search(line)), **settings)
    return Spec(app, redis, probes, file if file.is_file() else None)


def text_of(path):
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None


def parse(text, file=SPEC_FILE):
    """The text of a factor6.toml checked: (app settings for AppSpec, redis, probes); SpecError for a mistake."""
    return _Reader(text, file).read()


class _Reader:
    """Reads one factor6.toml; every refusal goes through ``fail``, which finds the key's line."""

    def __init__(self, text, file):
        self.text, self.file, self.names = text, file, {}

    def fail(self, path, reason):
        key = ".".join(str(part) if isinstance(part, str) else f"[{part}]" for part in path).replace(".[", "[")
        if path[:1] == ("probe",) and len(path) > 1 and isinstance(path[1], int):
            label = f"probe {self.names[path[1]]!r}" if path[1] in self.names else f"probe #{path[1] + 1}"
            key = label + (" " + key.split("]", 1)[1].lstrip(".") if len(path) > 2 else "")
        return SpecError.at(self.file, line_of(self.text, path), key, reason)

    def read(self):
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            reason = re.sub(r"\s*\(at line.*\)", "", str(exc)) + (f" (column {where[2]})" if where else "")
            raise SpecError.at(self.file, where and where[1], "TOML", reason) from None
        self.known(data, TOP_KEYS, ())
        app = self.table(data, "app", ())
        self.known(app, APP_KEYS, ("app",))
        backing = self.table(data, "backing", ())
        self.known(backing, BACKING_KEYS, ("backing",))
        redis = backing.get("redis", False)
        if not isinstance(redis, bool):
            raise self.fail(("backing", "redis"), f"true or false, not {redis!r}")
        return self.app(app), redis, self.probes(data.get("probe", []))

    def table(self, data, key, path):
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(path + (key,), f"a table, not {value!r}")
        return value

    def known(self, table, keys, path):
        for key in table:
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                guess = f"; did you mean {close[0]}?" if close else ""
                raise self.fail(path + (key,), f"unknown key{guess} (known: {', '.join(keys)})")

    def app(self, app):
        settings = {}
        if "process" in app:
            if not (isinstance(app["process"], str) and PROCESS.fullmatch(app["process"])):
                raise self.fail(("app", "process"), f"a Procfile process name, not {app['process']!r}")
            settings["process"] = app["process"]
        if "instances" in app:
            value = app["instances"]
            if type(value) is not int or not 2 <= value <= MAX_INSTANCES:
                least = "at least 2" if type(value) is int and value < 2 else f"from 2 to {MAX_INSTANCES}"
                raise self.fail(("app", "instances"), f"{least} instances, not {value!r}")
            settings["instances"] = value
        if "ready" in app:
            settings["ready"] = self.path_of(app["ready"], ("app", "ready"))
        for key, least in (("ready_timeout", 0.001), ("settle", 0)):
            if key in app:
                value = app[key]
                if type(value) not in (int, float) or not value >= least:
                    raise self.fail(("app", key), f"a number of seconds{' above 0' if least else ''}, not {value!r}")
                settings[key] = float(value)
        env = self.table(app, "env", ("app",))
        for name, value in env.items():
            if not ENV_NAME.fullmatch(name):
                raise self.fail(("app", "env", name), "not an environment variable name")
            if name == "PORT":
                raise self.fail(("app", "env", name), "factor6 gives each instance its own PORT")
            if not isinstance(value, (str, int, float, bool)):
                raise self.fail(("app", "env", name), f"a string or number, not {value!r}")
        if env:
            settings["env"] = tuple((name, scalar(value)) for name, value in env.items())
        return settings

    def path_of(self, value, path):
        if not (isinstance(value, str) and value.startswith("/")):
            raise self.fail(path, f"a path starting with /, not {value!r}")
        return value

    def probes(self, probes):
        probes = [probes] if isinstance(probes, dict) else probes  # [probe] for a single one
        if not isinstance(probes, list) or not all(isinstance(probe, dict) for probe in probes):
            raise self.fail(("probe",), "[[probe]] tables")
        for index, probe in enumerate(probes):
            if "name" in probe:
                self.names[index] = probe["name"]
        return tuple(self.probe(probe, index) for index, probe in enumerate(probes))

    def probe(self, probe, index):
        path = ("probe", index)
        self.known(probe, PROBE_KEYS, path)
        name = probe.get("name", f"probe{index + 1}")
        if not (isinstance(name, str) and name.strip()):
            raise self.fail(path + ("name",), f"a name, not {name!r}")
        if name in (self.names.get(earlier) for earlier in range(index)):
            raise self.fail(path + ("name",), "two probes have this name")
        if "write" not in probe:
            raise self.fail(path, "a probe with no write (write = { method = ..., path = ... })")
        if "read" not in probe:
            raise self.fail(path + ("write",), "a write with no read (read = { method = \"GET\", path = ... })")
        setup = probe.get("setup", [])
        setup = [setup] if isinstance(setup, dict) else setup
        if not isinstance(setup, list):
            raise self.fail(path + ("setup",), "a request, or a list of them")
        steps = [(self.step(step, path + ("setup", number)), path + ("setup", number))
                 for number, step in enumerate(setup)]
        steps += [(self.step(probe[key], path + (key,)), path + (key,)) for key in ("write", "read")]
        self.bound(steps)
        write = steps[-2][0]
        return Probe(name, tuple(step for step, _ in steps[:-2]), write, steps[-1][0],
                     self.source(probe.get("unique"), write, path + ("unique",)))

    def step(self, step, path):
        if not isinstance(step, dict):
            raise self.fail(path, f"a request (a table with method and path), not {step!r}")
        self.known(step, STEP_KEYS, path)
        for key in ("method", "path"):
            if key not in step:
                raise self.fail(path, f"a request needs a {key}")
        method = step["method"].upper() if isinstance(step["method"], str) else None
        if not (method and METHOD.fullmatch(method)):
            raise self.fail(path + ("method",), f"an HTTP method, not {step['method']!r}")
        if not (isinstance(step["path"], str) and step["path"][:1] in ("/", "{")):
            raise self.fail(path + ("path",), f"a path starting with / (or a placeholder), not {step['path']!r}")
        bodies = [key for key in BODIES if key in step]
        if len(bodies) > 1:
            raise self.fail(path + (bodies[1],), f"a body with two kinds ({' and '.join(bodies)}): one of json, form, file")
        fields = {}
        if "json" in step:
            fields["json"] = self.json_value(step["json"], path + ("json",))
        if "form" in step:
            fields["form"] = self.form(step["form"], path + ("form",))
        if "file" in step:
            fields.update(self.file_body(step["file"], path + ("file",)))
        if "file_field" in step:
            if "file" not in step:
                raise self.fail(path + ("file_field",), "file_field without a file body")
            fields["file_field"] = self.string(step["file_field"], path + ("file_field",))
        fields["headers"] = tuple(self.header(name, value, path + ("headers", name))
                                  for name, value in self.table(step, "headers", path).items())
        expect = step.get("expect", [200])
        expect = [expect] if type(expect) is int else expect
        if not (isinstance(expect, list) and expect and all(type(s) is int and 100 <= s <= 599 for s in expect)):
            raise self.fail(path + ("expect",), f"HTTP statuses (100-599), not {step.get('expect')!r}")
        fields["expect"] = tuple(expect)
        capture = self.table(step, "capture", path)
        for name, source in capture.items():
            where = path + ("capture", name)
            if not NAME.fullmatch(name):
                raise self.fail(where, "a capture name is letters, digits and _ (used as {name})")
            if name in RESERVED:
                raise self.fail(where, f"{{{name}}} is factor6's own placeholder; name the capture otherwise")
            self.checked(source, where)
        fields["capture"] = tuple(capture.items())
        if "contains" in step:
            fields["contains"] = self.string(step["contains"], path + ("contains",), numbers=True)
        equals = self.table(step, "equals", path)
        fields["equals"] = tuple((self.source(source, None, path + ("equals", source), captures=capture),
                                  self.string(value, path + ("equals", source), numbers=True))
                                 for source, value in equals.items())
        if "sha256" in step:
            sha = self.string(step["sha256"], path + ("sha256",))
            if not (SHA256.fullmatch(sha) or re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\}", sha)):
                raise self.fail(path + ("sha256",), f"64 hex digits or a placeholder like {{{WRITTEN_SHA256}}}, not {sha!r}")
            fields["sha256"] = sha
        return Step(method, step["path"], **fields)

    def string(self, value, path, numbers=False):
        if numbers and isinstance(value, (int, float, bool)):
            return scalar(value)
        if not isinstance(value, str):
            raise self.fail(path, f"a string, not {value!r}")
        return value

    def header(self, name, value, path):
        value = self.string(value, path, numbers=True)
        if not HEADER.fullmatch(name):
            raise self.fail(path, "not a header name (letters, digits and !#$%&'*+.^_`|~-)")
        if "\n" in value or "\r" in value:
            raise self.fail(path, "a header value is one line")
        return name, value

    def json_value(self, value, path):
        """``value`` if JSON can carry it: no TOML dates or times, no infinite numbers."""
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            self.json_value(item, path + ((key,) if isinstance(key, str) else ()))
        if not isinstance(value, (dict, list, str, int, bool)) and not (isinstance(value, float) and math.isfinite(value)):
            raise self.fail(path, f"a JSON value, not {value!r}")
        return value

    def form(self, form, path):
        if not isinstance(form, dict):
            raise self.fail(path, f"a table of fields, not {form!r}")
        values = {}
        for name, value in form.items():
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(item, (str, int, float, bool)) for item in items):
                raise self.fail(path + (name,), f"a string or number (or a list of them), not {value!r}")
            values[name] = [scalar(item) for item in items] if isinstance(value, list) else scalar(value)
        return values

    def file_body(self, value, path):
        value = {"size": value} if type(value) is int else value
        if not isinstance(value, dict):
            raise self.fail(path, f"{{ size = BYTES }}, not {value!r}")
        self.known(value, FILE_KEYS, path)
        size = value.get("size")
        if type(size) is not int or size < 1:
            raise self.fail(path + ("size",), f"a number of bytes (at least 1), not {size!r}")
        fields = {"file_size": size}
        for key in ("field", "file_field"):
            if key in value:
                fields["file_field"] = self.string(value[key], path + (key,))
        return fields

    def checked(self, source, path):
        try:
            return check_source(source)
        except ValueError as exc:
            raise self.fail(path, "a capture with no source: " + str(exc)) from None

    def source(self, value, write, path, captures=None):
        """A capture source, or the source of a name the step captures (``unique = "id"`` or ``"{id}"``)."""
        if value is None:
            return None
        captures = dict(write.capture) if write else captures
        name = value[1:-1] if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value) else value
        if isinstance(name, str) and name in captures and name not in ("body", "sha256", "status"):
            return captures[name]
        return self.checked(value, path)

    def bound(self, steps):
        """Every placeholder names a value bound before its step: factor6's own, or an earlier step's capture."""
        known, file_sent = {TOKEN, VISITOR}, False
        for step, path in steps:
            file_sent = file_sent or step.file_size is not None
            for key, template in (("path", step.path), ("headers", dict(step.headers)), ("json", step.json),
                                  ("form", step.form), ("contains", step.contains), ("equals", dict(step.equals)),
                                  ("sha256", step.sha256)):
                try:
                    names = placeholders(template)
                except ValueError as exc:
                    raise self.fail(path + (key,), str(exc)) from None
                for name in names:
                    if name == WRITTEN_SHA256 and not file_sent:
                        raise self.fail(path + (key,), f"{{{name}}} before any file body was sent")
                    if name not in known | {WRITTEN_SHA256}:
                        raise self.fail(path + (key,), f"bad placeholder {{{name}}}: nothing captures {name!r} "
                                                       f"before this step (known: {', '.join(sorted(known))})")
            known |= {name for name, _ in step.capture}


def scalar(value):
    """A TOML scalar as the string it is sent as: ``true``, ``3``, ``0.5``, text as it is."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
