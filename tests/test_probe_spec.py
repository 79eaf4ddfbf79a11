"""factor6.toml and the Procfile read into a probe Spec, or refused in one line naming file:line and key; the pure
step functions (placeholders, captures, judging, building a request). In process, no server started.

The examples' and the demo's verdicts on real processes are tests/test_probe*.py's (the runner's).
"""
import hashlib
import json
import random
import re

import pytest
from hypothesis import given, settings, strategies as st
from requests.structures import CaseInsensitiveDict

from bench.paths import ROOT
from bench.probe import spec
from bench.probe.spec import SpecError, Step, load, parse
from bench.probe.steps import capture, check_source, judge, placeholders, render, request_for

pytestmark = pytest.mark.fast

EXAMPLES = sorted(path for path in (ROOT / "examples").iterdir() if path.is_dir())
GOOD_WRITE = 'write = { method = "POST", path = "/p", capture = { id = "json:id" } }\n'
GOOD_READ = 'read = { method = "GET", path = "/p/{id}" }\n'


# The shipped specs ------------------------------------------------------------------------------------------------

def test_there_are_the_five_examples_issue_22_asks_for():
    assert [path.name for path in EXAMPLES] == ["memory-records", "node-disk-files", "per-process-secret",
                                                "sqlite-disk", "stateless-redis"]


@pytest.mark.parametrize("app_dir", EXAMPLES, ids=lambda path: path.name)
def test_each_example_loads_with_a_web_line_using_port_and_a_short_readme(app_dir):
    loaded = load(app_dir)
    assert loaded.file == app_dir / "factor6.toml" and loaded.probes
    assert loaded.app.process == "web" and loaded.app.names_port and loaded.app.instances == 3
    readme = (app_dir / "README.md").read_text()
    assert 3 <= len(readme.splitlines()) <= 6 and f"scripts/probe examples/{app_dir.name}" in readme
    sources = [path.read_text() for path in app_dir.iterdir() if path.suffix in (".py", ".js")]
    assert any("127.0.0.1" in text for text in [loaded.app.command, *sources]), "listens on 127.0.0.1 only"
    for probe in loaded.probes:
        assert probe.read.method == "GET" and probe.write.method in ("POST", "PUT")


def test_only_the_redis_example_asks_for_redis():
    assert {path.name: load(path).redis for path in EXAMPLES} == {
        "memory-records": False, "node-disk-files": False, "per-process-secret": False, "sqlite-disk": False,
        "stateless-redis": True}


def test_the_demo_app_spec_probes_hits_cart_and_uploads_on_redis():
    demo = load(ROOT)
    assert demo.redis and demo.app.ready == "/readyz" and demo.file == ROOT / "factor6.toml"
    assert demo.app.command == "exec gunicorn -c web/gunicorn_conf.py 'web:create_app()'"
    assert not demo.app.names_port  # gunicorn_conf.py reads PORT from the environment: allowed
    hits, cart, uploads = demo.probes
    assert (hits.name, hits.unique, dict(hits.write.headers)) == ("hits", "json:hits", {"Idempotency-Key": "{token}"})
    assert dict(hits.read.equals) == {"json:hits": "{number}", "json:replayed": "true"}
    assert (cart.name, cart.setup[0].path, cart.write.path, cart.read.contains) == (
        "cart", "/session", "/cart/items", "{token}")
    assert (uploads.name, uploads.write.json, dict(uploads.read.equals)) == (
        "uploads", 12345, {"json:sum": "12345", "json:bytes": "5"})


def test_no_spec_file_is_zero_config(tmp_path):
    (tmp_path / "Procfile").write_text("web: exec python -m http.server $PORT\nworker: exec python worker.py\n")
    loaded = load(tmp_path)
    assert (loaded.probes, loaded.redis, loaded.file) == ((), False, None)
    assert loaded.app.command == "exec python -m http.server $PORT"


def test_flags_win_over_the_spec_file(tmp_path):
    (tmp_path / "Procfile").write_text("web: exec a $PORT\napi: exec b --port ${PORT}\n")
    (tmp_path / "factor6.toml").write_text('[app]\nprocess = "web"\ninstances = 4\n')
    assert load(tmp_path).app.instances == 4
    loaded = load(tmp_path, process="api", instances=2)
    assert (loaded.app.command, loaded.app.process, loaded.app.instances) == ("exec b --port ${PORT}", "api", 2)
    assert load(tmp_path, command="exec c $PORT").app.command == "exec c $PORT"


def test_every_key_of_issue_22s_example_is_read(tmp_path):
    (tmp_path / "Procfile").write_text("web: exec serve $PORT\n")
    (tmp_path / "factor6.toml").write_text('''
[app]
process = "web"            # Procfile line (default "web")
instances = 3
ready = "/health"
ready_timeout = 60
settle = 1.0
[app.env]
SECRET_KEY = "same-for-all"
WORKERS = 2

[backing]
redis = true

[[probe]]
name = "records"
setup = [{ method = "POST", path = "/register", form = { user = "{visitor}" }, expect = [302], capture = { next = "header:Location" } },
         { method = "GET", path = "{next}" }]
write = { method = "POST", path = "/posts", json = { title = "{token}" }, expect = [200, 201], capture = { id = "json:id" } }
read  = { method = "GET", path = "/posts/{id}", expect = [200], contains = "{token}" }
unique = "json:id"

[[probe]]
name = "files"
write = { method = "PUT", path = "/f/{token}", file = { size = 1024 }, file_field = "doc", headers = { X-Who = "{visitor}" } }
read  = { method = "GET", path = "/f/{token}", sha256 = "{written_sha256}", equals = { "header:X-Who" = "{visitor}" } }
''')
    loaded = load(tmp_path)
    assert loaded.app.env == (("SECRET_KEY", "same-for-all"), ("WORKERS", "2"))
    assert (loaded.app.ready, loaded.app.ready_timeout, loaded.app.settle) == ("/health", 60.0, 1.0)
    records, files = loaded.probes
    assert [step.expect for step in records.setup] == [(302,), (200,)]
    assert records.setup[0].form == {"user": "{visitor}"} and records.write.expect == (200, 201)
    assert (files.write.file_size, files.write.file_field, files.write.headers) == (1024, "doc", (("X-Who", "{visitor}"),))


ISSUE_22_EXAMPLE = """\
[app]
process = "web"            # Procfile line (default "web")
instances = 3              # default 3; at least 2
ready = "/"                # GET path answering below 500 once an instance is up (default "/")
ready_timeout = 60         # seconds an instance may take to answer ready (default 60)
settle = 1.0               # seconds a failed read is retried before it counts (default 1.0), so eventual consistency is not convicted
[app.env]                  # extra environment for every instance
SECRET_KEY = "same-for-all"

[backing]
redis = true               # factor6 starts its Valkey and gives each instance REDIS_URL, HOST_REDIS and PORT_REDIS

[[probe]]                  # one or more
name = "records"
write = { method = "POST", path = "/posts", json = { title = "{token}" }, expect = [200, 201], capture = { id = "json:id" } }
read  = { method = "GET", path = "/posts/{id}", expect = [200], contains = "{token}" }
unique = "json:id"         # optional: a captured value no two acknowledged writes may share
"""


def test_issue_22s_example_loads_as_written(tmp_path):
    (tmp_path / "Procfile").write_text("web: exec serve $PORT\n")
    (tmp_path / "factor6.toml").write_text(ISSUE_22_EXAMPLE)
    loaded = load(tmp_path)
    assert loaded.app == spec.AppSpec(tmp_path, "exec serve $PORT", env=(("SECRET_KEY", "same-for-all"),))
    assert loaded.probes == (spec.Probe(
        "records", (), Step("POST", "/posts", json={"title": "{token}"}, expect=(200, 201), capture=(("id", "json:id"),)),
        Step("GET", "/posts/{id}", contains="{token}"), "json:id"),)


@pytest.mark.parametrize("unique", ['"json:id"', '"id"', '"{id}"'])
def test_unique_is_a_source_or_a_name_the_write_captures(unique):
    _, _, (probe,) = parse(PROBE + GOOD_WRITE + GOOD_READ + f"unique = {unique}\n")
    assert probe.unique == "json:id"


def test_an_unknown_key_near_a_known_one_gets_a_guess():
    with pytest.raises(SpecError, match=r"^factor6.toml:2: app.ready_timout: unknown key; did you mean ready_timeout\?"):
        parse("[app]\nready_timout = 5\n")


# Refusals: one line, file:line: key: reason ------------------------------------------------------------------------

PROBE = '[[probe]]\nname = "p"\n'
REFUSALS = {
    "unknown top-level key": ('[app]\ninstances = 3\n[apps]\nx = 1\n', 3, "apps", "unknown key"),
    "unknown app key": ('[app]\nprocess = "web"\nreadiness = "/"\n', 3, "app.readiness", "unknown key"),
    "unknown step key": (PROBE + 'write = { method = "POST", path = "/p", captur = { id = "json:id" } }\n' + GOOD_READ,
                         3, "probe 'p' write.captur", "unknown key"),
    "unknown probe key": (PROBE + GOOD_WRITE + GOOD_READ + 'uniq = "json:id"\n', 5, "probe 'p' uniq", "unknown key"),
    "bad placeholder": (PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p/{post id}" }\n', 4,
                        "probe 'p' read.path", "bad placeholder '{post id}'"),
    "placeholder with a dash": (PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p", contains = "{post-id}" }\n', 4,
                                "probe 'p' read.contains", "bad placeholder '{post-id}'"),
    "placeholder nothing captures": (PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p/{pid}" }\n', 4,
                                     "probe 'p' read.path", "nothing captures 'pid'"),
    "placeholder captured later": (PROBE + 'setup = { method = "GET", path = "/{id}" }\n' + GOOD_WRITE + GOOD_READ, 3,
                                   "probe 'p' setup[0].path", "nothing captures 'id'"),
    "written_sha256 with no file": (PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p/{id}", '
                                    'sha256 = "{written_sha256}" }\n', 4, "probe 'p' read.sha256", "before any file"),
    "capture with no source": (PROBE + 'write = { method = "POST", path = "/p", capture = { id = "" } }\n' + GOOD_READ,
                               3, "probe 'p' write.capture.id", "a capture with no source"),
    "capture of an unknown source": (PROBE + 'write = { method = "POST", path = "/p", capture = { id = "jsn:id" } }\n'
                                     + GOOD_READ, 3, "probe 'p' write.capture.id", "a capture with no source"),
    "capture taking a reserved name": (PROBE + 'write = { method = "POST", path = "/p", capture = { token = "body" } }\n'
                                       + GOOD_READ, 3, "probe 'p' write.capture.token", "factor6's own placeholder"),
    "unique with no source": (PROBE + GOOD_WRITE + GOOD_READ + 'unique = "ident"\n', 5, "probe 'p' unique",
                              "a capture with no source"),
    "equals with no source": (PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p/{id}", equals = { who = "x" } }\n',
                              4, "probe 'p' read.equals.who", "a capture with no source"),
    "write with no read": (PROBE + '\n' + GOOD_WRITE, 4, "probe 'p' write", "a write with no read"),
    "probe with no write": (PROBE + GOOD_READ, 1, "probe 'p'", "no write"),
    "body with two kinds": (PROBE + 'write = { method = "POST", path = "/p", json = { a = 1 }, file = 10 }\n' + GOOD_READ,
                            3, "probe 'p' write.file", "a body with two kinds (json and file)"),
    "file_field with no file": (PROBE + 'write = { method = "POST", path = "/p", file_field = "doc" }\n' + GOOD_READ, 3,
                                "probe 'p' write.file_field", "without a file body"),
    "file of no size": (PROBE + 'write = { method = "POST", path = "/p", file = { size = 0 } }\n' + GOOD_READ, 3,
                        "probe 'p' write.file.size", "at least 1"),
    "step with no path": (PROBE + 'write = { method = "POST" }\n' + GOOD_READ, 3, "probe 'p' write", "needs a path"),
    "full URL as path": (PROBE + 'write = { method = "POST", path = "http://x/p" }\n' + GOOD_READ, 3,
                         "probe 'p' write.path", "starting with /"),
    "status out of range": (PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p/{id}", expect = [200, 99] }\n', 4,
                            "probe 'p' read.expect", "HTTP statuses"),
    "bad sha256": (PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p/{id}", sha256 = "abc" }\n', 4,
                   "probe 'p' read.sha256", "64 hex digits"),
    "two probes of one name": (PROBE + GOOD_WRITE + GOOD_READ + '\n' + PROBE + GOOD_WRITE + GOOD_READ, 7,
                               "probe 'p' name", "two probes have this name"),
    "JSON body with a date": (PROBE + 'write = { method = "POST", path = "/p", json = { at = 2024-01-01 } }\n'
                              + GOOD_READ, 3, "probe 'p' write.json.at", "a JSON value"),
    "bad header name": (PROBE + 'write = { method = "POST", path = "/p", headers = { "X Who" = "a" } }\n' + GOOD_READ,
                        3, "probe 'p' write.headers.X Who", "not a header name"),
    "header of two lines": (PROBE + 'write = { method = "POST", path = "/p", headers = { X-Who = "a\\nb" } }\n'
                            + GOOD_READ, 3, "probe 'p' write.headers.X-Who", "one line"),
    "key named in a comment first": ('[app]\n# instances = 1 is too few\ninstances = 1\n', 3, "app.instances",
                                     "at least 2"),
    "instances below 2": ('[app]\nprocess = "web"\ninstances = 1\n', 3, "app.instances", "at least 2 instances, not 1"),
    "instances not a number": ('[app]\ninstances = "3"\n', 2, "app.instances", "from 2 to 16"),
    "ready not a path": ('[app]\nready = "health"\n', 2, "app.ready", "starting with /"),
    "negative settle": ('[app]\n\nsettle = -1\n', 3, "app.settle", "a number of seconds"),
    "PORT in env": ('[app]\n[app.env]\nA = "1"\nPORT = "80"\n', 4, "app.env.PORT", "its own PORT"),
    "redis not a bool": ('[backing]\nredis = "yes"\n', 2, "backing.redis", "true or false"),
    "not TOML": ('[app]\ninstances = 3\nready = /\n', 3, "TOML", "Invalid value"),
    "key given twice": ('[app]\nsettle = 1\nsettle = 2\n', 3, "TOML", "Cannot overwrite"),
    "setup's second step": (PROBE + 'setup = [\n  { method = "POST", path = "/a" },\n  { method = "GET", path = "/b", '
                            'expect = "ok" },\n]\n' + GOOD_WRITE + GOOD_READ, 5, "probe 'p' setup[1].expect",
                            "HTTP statuses"),
    "second probe, sub-tables": (PROBE + GOOD_WRITE + GOOD_READ + '\n[[probe]]\nname = "q"\n[probe.write]\n'
                                 'method = "POST"\npath = "/q"\n[probe.read]\nmethod = "GET"\npath = "/q"\ncontain = "x"\n',
                                 14, "probe 'q' read.contain", "unknown key"),
}


@pytest.mark.parametrize("text, line, key, reason", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_bad_spec_is_refused_in_one_line_naming_file_line_and_key(tmp_path, text, line, key, reason):
    (tmp_path / "Procfile").write_text("web: exec serve $PORT\n")
    (tmp_path / "factor6.toml").write_text(text)
    with pytest.raises(SpecError) as refused:
        load(tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'factor6.toml'}:{line}: {key}: "), message
    assert reason in message


def spec_text(layout, bad_probe, bad_step):
    """Two probes of two setup steps, a write and a read each, with ``bogus = 1`` in one step, in one of three layouts:
    inline tables, a setup list over several lines, or sub-tables ([[probe.setup]], [probe.write])."""
    lines = []
    for index in range(2):
        lines += ["", "[[probe]]", f'name = "p{index}"', "# write = { bogus = 1 } in a comment is no key"]
        fields = {step: f'method = "GET", path = "/{step}"' + (", bogus = 1" if (index, step) == (bad_probe, bad_step)
                                                                else "")
                  for step in ("setup0", "setup1", "write", "read")}
        if layout == "tables":
            for step, key in (("setup0", "[[probe.setup]]"), ("setup1", "[[probe.setup]]"), ("write", "[probe.write]"),
                              ("read", "[probe.read]")):
                lines += [key, *fields[step].split(", ")]
            continue
        if layout == "inline":
            lines += [f"setup = [{{ {fields['setup0']} }}, {{ {fields['setup1']} }}]"]
        else:
            lines += ["setup = [", f"  {{ {fields['setup0']} }},", f"  {{ {fields['setup1']} }},", "]"]
        lines += [f"write = {{ {fields['write']} }}", f"read = {{ {fields['read']} }}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("layout", ["inline", "list", "tables"])
@pytest.mark.parametrize("bad_probe", [0, 1])
@pytest.mark.parametrize("bad_step", ["setup0", "setup1", "write", "read"])
def test_the_line_named_is_the_bad_keys_in_every_layout(layout, bad_probe, bad_step):
    text = spec_text(layout, bad_probe, bad_step)
    line = next(number for number, content in enumerate(text.splitlines(), 1) if "bogus" in content and "#" not in content)
    step = f"setup[{bad_step[-1]}]" if bad_step.startswith("setup") else bad_step
    with pytest.raises(SpecError, match=rf"^factor6.toml:{line}: probe 'p{bad_probe}' {re.escape(step)}.bogus: unknown"):
        parse(text)


@pytest.mark.parametrize("procfile, arguments, expected", [
    (None, {}, r"Procfile: no such file \(or give --command"),
    ("worker: exec w\n", {}, r"Procfile has no 'web' process type \(it has worker\)"),
    ("web: exec a $PORT\n", {"process": "api"}, r"Procfile has no 'api' process type \(it has web\)"),
    ("web: exec a $PORT\nweb: exec b $PORT\n", {}, r"Procfile: process names must be unique"),
    ("web: exec a $PORT\n", {"instances": 1}, r"^--instances: from 2 to 16 instances, not 1$"),
    ("web: exec a $PORT\n", {"command": "exec a --port 5000"}, r"^--command: 'exec a --port 5000' names no \$PORT"),
    ("web: exec a $PORT\n", {"process": "web 2"}, r"^--process: 'web 2' is no Procfile process name"),
])
def test_a_bad_procfile_or_flag_is_refused_in_one_line(tmp_path, procfile, arguments, expected):
    if procfile:
        (tmp_path / "Procfile").write_text(procfile)
    with pytest.raises(SpecError, match=expected) as refused:
        load(tmp_path, **arguments)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("name", ["factor6.toml", "Procfile"])
def test_a_file_not_utf8_is_refused_in_one_line(tmp_path, name):
    (tmp_path / "Procfile").write_text("web: exec serve $PORT\n")
    (tmp_path / name).write_bytes(b"web: exec caf\xe9 $PORT\n")
    with pytest.raises(SpecError, match=rf"^{re.escape(str(tmp_path / name))}: not UTF-8 text \(byte 14\)$"):
        load(tmp_path)


def test_a_process_the_spec_names_and_the_procfile_lacks_is_refused_at_its_line(tmp_path):
    (tmp_path / "Procfile").write_text("web: exec a $PORT\n")
    (tmp_path / "factor6.toml").write_text('[app]\ninstances = 2\nprocess = "api"\n')
    with pytest.raises(SpecError, match=rf"^{re.escape(str(tmp_path))}/factor6.toml:3: app.process: .*Procfile has no 'api'"):
        load(tmp_path)
    assert load(tmp_path, process="web").app.process == "web"


def test_a_missing_app_dir_is_refused(tmp_path):
    with pytest.raises(SpecError, match="no such directory"):
        load(tmp_path / "nowhere")


def test_a_procfile_line_may_leave_port_to_the_app(tmp_path):
    (tmp_path / "Procfile").write_text("web: exec node server.js\n")  # reads process.env.PORT, as on Heroku
    assert not load(tmp_path).app.names_port


# The step functions -----------------------------------------------------------------------------------------------

def test_a_file_body_binds_written_sha256_that_judges_the_read_back():
    bindings, write = {"token": "t1"}, Step("POST", "/files", file_size=1000)
    sent = request_for(write, bindings, random.Random(7))["files"]["file"][1]
    assert len(sent) == 1000 and bindings["written_sha256"] == hashlib.sha256(sent).hexdigest()
    read = Step("GET", "/files/1", sha256="{written_sha256}")
    assert judge(read, 200, {}, sent, bindings) is None
    assert judge(read, 200, {}, sent[:-1], bindings) == "sha256 differs"


def test_a_form_body_and_headers_are_rendered():
    step = Step("POST", "/login?next=/{visitor}", form={"user": "{visitor}", "tags": ["a", "{token}"]},
                headers=(("Idempotency-Key", "{token}"),))
    kw = request_for(step, {"visitor": "ana", "token": "t9"}, random.Random(0))
    assert kw == {"method": "POST", "path": "/login?next=/ana", "headers": {"Idempotency-Key": "t9"},
                  "allow_redirects": False, "data": {"user": "ana", "tags": ["a", "t9"]}}


def test_judge_reads_headers_case_insensitively_and_names_what_is_missing():
    step = Step("GET", "/", expect=(302,), capture=(("next", "header:Location"),),
                equals=(("header:x-user", "{visitor}"),))
    headers = CaseInsensitiveDict({"location": "/home", "X-User": "ana"})
    assert judge(step, 302, headers, b"", {"visitor": "ana"}) is None
    assert judge(step, 302, [("Location", "/home")], b"", {"visitor": "ana"}) == \
        "no header:x-user in the answer (wanted 'ana')"
    assert judge(step, 200, headers, b"", {"visitor": "ana"}) == "status 200 not in [302]"
    assert judge(step, 302, {}, b"", {"visitor": "ana"}) == "no header:Location in the answer (for next)"


def test_judge_quotes_long_values_short():
    step = Step("GET", "/", equals=(("body", "x"),))
    reason = judge(step, 200, {}, b"y" * 500, {})
    assert len(reason) < 150 and reason.startswith("body is 'yyy") and "…" in reason


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"a": "x"}', b"\xff\xfe"])
def test_a_json_capture_of_a_missing_value_is_none(body):
    assert capture("json:a.b", 200, {}, body) is None


@pytest.mark.parametrize("source", ["json", "json:a..b", "header:", "header:Bad Name", "Body", "sha1", "", None, 3])
def test_a_source_that_names_nothing_is_refused(source):
    with pytest.raises(ValueError, match="names nothing"):
        check_source(source)


@pytest.mark.parametrize("template", ["{1x}", "{a.b}", "{a:>3}", "{a!r}", "{ a }", "{a-b}", "x{é}"])
def test_a_bad_placeholder_is_refused_by_placeholders_and_render(template):
    with pytest.raises(ValueError):
        placeholders(template)
    with pytest.raises(ValueError):
        render(template, {"a": "1", "1x": "2"})


SETTINGS = settings(max_examples=60, deadline=None)
@pytest.mark.parametrize("template, text", [
    ('{"ok": true}', '{"ok": true}'), ("{'a': 1}", "{'a': 1}"), ("{}", "{}"), ("{", "{"), ("a}b", "a}b"),
    ('{"who": "{visitor}", "tags": []}', '{"who": "ana", "tags": []}'), ("{{visitor}}", "{ana}"),
    ('{"a":{"b":{"who":"{visitor}"}}}', '{"a":{"b":{"who":"ana"}}}'),
])
def test_braces_around_json_or_nothing_are_text(template, text):
    assert render(template, {"visitor": "ana"}) == text


def test_a_json_literal_in_contains_is_accepted_and_judged():
    _, _, (probe,) = parse(PROBE + GOOD_WRITE + 'read = { method = "GET", path = "/p/{id}", contains = \'{"id":"{id}"}\' }\n')
    assert judge(probe.read, 200, {}, b'{"id":"7"}', {"id": "7"}) is None
    assert judge(probe.read, 200, {}, b'{"id":"8"}', {"id": "7"}) == """body lacks '{"id":"7"}'"""


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
TEXTS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="{}"), max_size=10)


@SETTINGS
@given(st.lists(st.one_of(TEXTS.map(lambda text: ("text", text)), NAMES.map(lambda name: ("name", name))), max_size=8),
       st.dictionaries(NAMES, TEXTS))
def test_render_fills_each_placeholder_and_keeps_the_text(parts, values):
    """A template made of text and placeholders renders to the text and the bound values, in order."""
    bindings = {name: values.get(name, f"<{name}>") for kind, name in parts if kind == "name"}
    template = "".join(part if kind == "text" else "{" + part + "}" for kind, part in parts)
    assert placeholders(template) == tuple(part for kind, part in parts if kind == "name")
    assert render(template, bindings) == "".join(part if kind == "text" else bindings[part] for kind, part in parts)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | TEXTS,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("ab.", min_size=1, max_size=2)
                                                                                .filter(lambda key: "." not in key),
                                                                                inner, max_size=3), max_leaves=10)


@SETTINGS
@given(JSON, st.booleans())
def test_json_text_is_a_template_of_itself(document, compact):
    """JSON in a ``contains`` (objects, nested, empty) needs no escapes: with no placeholder in it, it stays as it is."""
    text = json.dumps(document, separators=(",", ":") if compact else None, ensure_ascii=False)
    assert placeholders(text) == () and render(text, {}) == text


def paths(document, prefix=()):
    yield prefix, document
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths(value, prefix + (str(index),))


@SETTINGS
@given(JSON)
def test_a_json_capture_finds_every_value_by_its_dotted_path(document):
    body = json.dumps(document).encode()
    for path, value in paths(document):
        if path:
            found = capture("json:" + ".".join(path), 200, {}, body)
            assert found == (None if value is None else value if isinstance(value, str)
                             else json.dumps(value, separators=(",", ":"), ensure_ascii=False))


@SETTINGS
@given(st.binary(max_size=64))
def test_sha256_and_body_captures_are_of_the_raw_body(body):
    assert capture("sha256", 200, {}, body) == hashlib.sha256(body).hexdigest()
    assert capture("body", 200, {}, body) == body.decode("utf-8", errors="replace")


def test_the_reference_explains_every_key_the_spec_reads():
    reference = (ROOT / "docs" / "reference" / "factor6-toml.md").read_text()
    for key in spec.TOP_KEYS + spec.APP_KEYS + spec.BACKING_KEYS + spec.PROBE_KEYS + spec.STEP_KEYS:
        assert re.search(rf"`\[*{key}\]*`", reference), f"docs/reference/factor6-toml.md does not explain {key}"
