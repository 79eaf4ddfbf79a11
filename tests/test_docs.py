"""The docs stay true: links resolve, the front page stays short, the reference matches the code, the tutorials run.

    $ scripts/test tests/test_docs.py -m fast     # links, anchors, length, settings, categories, packages
    $ scripts/test tests/test_docs.py             # and the tutorials' marked commands, on real processes

Fast tier: every relative link and image in README.md and docs/**.md names a file that exists, and an ``#anchor``
into a Markdown file names one of its headings (GitHub's slugs); README.md has at most 250 lines; every setting
the code reads is in docs/reference/configuration.md; every verdict category is in verdict-categories.md; every
package is in layout.md. Negative controls feed the checkers a broken link, a broken anchor and a missing flag.

Real processes: a tutorial marks a fenced block with ``<!-- docs-test: KIND -->`` on the line before it, and
each line of the block runs as written, from the checkout: ``help`` exits 0 with a usage; ``refused`` exits 2
in one line; ``valid`` exits 0 and ends VALID (its report goes to a temporary folder). Each command's options
in docs/reference/commands.md are compared with the options its ``--help`` lists.
"""
import re
import subprocess

import pytest
from markdown_it import MarkdownIt

from bench.verdict.model import CATEGORIES
from tests.procs import ROOT, VENV_BIN, process_env
from scaler.processes import stop_tree

README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250
MARKER = re.compile(r"<!--\s*docs-test:\s*(\w+)\s*-->")
KINDS = ("help", "refused", "valid")
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
RUN_TIMEOUT_S = 600  # a 10 s check takes about 20 s idle; two shared, busy cores have made such runs 10x slower

markdown = MarkdownIt("commonmark").enable("table")


def pages():
    return [README, *sorted(DOCS.rglob("*.md"))]


def tokens_of(path):
    return markdown.parse(path.read_text(encoding="utf-8"))


def slug(text, seen):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    base = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}-{count}"


def anchors(path):
    tokens, seen = tokens_of(path), {}
    return {slug("".join(child.content for child in tokens[i + 1].children if child.type in ("text", "code_inline")),
                 seen)
            for i, token in enumerate(tokens) if token.type == "heading_open"}


def targets(path):
    """Every link and image target in ``path``'s text, code blocks and code spans left out."""
    for token in tokens_of(path):
        for child in token.children or ():
            if child.type == "link_open":
                yield child.attrs["href"]
            elif child.type == "image":
                yield child.attrs["src"]


def broken(path, target):
    """Why a link from ``path`` to ``target`` does not resolve, or None when it does (or is not relative)."""
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not this test's to check
        return None
    name, _, anchor = target.partition("#")
    file = (path.parent / name).resolve() if name else path
    if ROOT not in (file, *file.parents):
        return f"{path.relative_to(ROOT)}: {target}: outside the checkout"
    if not file.exists():
        return f"{path.relative_to(ROOT)}: {target}: no such file"
    if anchor and file.suffix == ".md" and anchor not in anchors(file):
        return f"{path.relative_to(ROOT)}: {target}: no heading #{anchor} in {file.relative_to(ROOT)}"
    return None


@pytest.mark.fast
def test_every_relative_link_and_anchor_resolves():
    problems = [problem for page in pages() for target in targets(page) if (problem := broken(page, target))]
    assert not problems, "\n".join(problems)


@pytest.mark.fast
def test_a_broken_link_or_anchor_is_reported(tmp_path):
    # The negative control: a checker that stopped finding anything would pass the test above on any docs.
    page = DOCS / "README.md"
    assert broken(page, "tutorials/first-check.md#2-a-short-check") is None
    assert "no such file" in broken(page, "tutorials/no-such-page.md")
    assert "no heading #no-such-heading" in broken(page, "tutorials/first-check.md#no-such-heading")
    assert "outside the checkout" in broken(page, "../../etc/hostname")
    assert list(targets(page)), "the index has links: targets() found none"


@pytest.mark.fast
def test_slugs_are_githubs():
    seen = {}
    assert slug("4. The report", seen) == "4-the-report"
    assert slug("Failover: what each setting loses (one machine)", seen) == "failover-what-each-setting-loses-one-machine"
    assert slug("4. The report", seen) == "4-the-report-1"


@pytest.mark.fast
def test_the_readme_is_a_front_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    first_screen = "\n".join(text.splitlines()[:40])
    assert "scripts/probe examples/memory-records" in first_screen
    for words in ("scripts/demo", "VALID", "INVALID", "NO VERDICT", "scripts/test -m fast", "docs/README.md"):
        assert words in text, words


@pytest.mark.fast
def test_the_four_kinds_are_indexed():
    index = {target.partition("#")[0] for target in targets(DOCS / "README.md")}
    written = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md") if path.name != "README.md"}
    assert written <= index, f"pages missing from docs/README.md: {sorted(written - index)}"
    for kind in ("tutorials", "how-to", "reference", "explanation"):
        assert any(page.startswith(kind + "/") for page in written), kind


def settings_read_by_the_code():
    """{variable: files}: every environment variable the runtime and bench code read by name."""
    patterns = [re.compile(r"""(?:env|environ)(?:\.get)?[(\[]\s*["']([A-Z][A-Z0-9_]+)["']"""),
                re.compile(r"""number\(\s*[\w.]+\s*,\s*["']([A-Z][A-Z0-9_]+)["']"""),
                re.compile(r"""\(\s*["']([A-Z][A-Z0-9_]+)["']\s*,\s*(?:int|float)\b""")]
    table = re.compile(r"^``([A-Z][A-Z0-9_]+)``", re.MULTILINE)  # the settings tables of the config docstrings
    found = {}
    for package in ("common", "web", "proxy", "scaler", "backing", "bench"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in patterns + [table] * (path.name == "config.py"):
                for variable in pattern.findall(text):
                    found.setdefault(variable, set()).add(str(path.relative_to(ROOT)))
    found.pop("PATH", None)  # the shell's, not a setting
    return found


@pytest.mark.fast
def test_every_setting_the_code_reads_is_documented():
    settings = settings_read_by_the_code()
    # The negative control: the readers of web, the proxy and the backing service are all seen.
    assert {"WEB_WORKERS", "PROXY_STICKY", "PROXY_LOOP", "REDIS_PERSISTENCE", "SCALER_MAX"} <= settings.keys()
    page = (DOCS / "reference/configuration.md").read_text(encoding="utf-8")
    missing = {variable: sorted(files) for variable, files in settings.items() if f"`{variable}`" not in page}
    assert not missing, f"settings read by the code, not in docs/reference/configuration.md: {missing}"


@pytest.mark.fast
def test_every_verdict_category_is_documented():
    page = (DOCS / "reference/verdict-categories.md").read_text(encoding="utf-8")
    assert [name for name in CATEGORIES if f"`{name}`" not in page] == []


@pytest.mark.fast
def test_every_package_is_in_the_layout():
    page = (DOCS / "reference/layout.md").read_text(encoding="utf-8")
    packages = [path.parent.name for path in ROOT.glob("*/__init__.py")]
    assert "common" in packages
    assert [name for name in packages if f"{name}/" not in page] == []


# -- the tutorials' commands, run as written ------------------------------------------------------------


def marked_blocks(paths=TUTORIALS):
    """[(kind, command, page)] for each line of each fenced block a ``<!-- docs-test: KIND -->`` line precedes."""
    found = []
    for path in paths:
        tokens = tokens_of(path)
        for before, token in zip(tokens, tokens[1:]):
            mark = MARKER.search(before.content) if before.type == "html_block" else None
            if mark and token.type == "fence":
                assert mark.group(1) in KINDS, f"{path.name}: unknown docs-test kind {mark.group(1)}"
                commands = [line.split(" #")[0].strip() for line in token.content.splitlines()]
                found += [(mark.group(1), command, path.name) for command in commands if command]
    return found


@pytest.mark.fast
def test_the_tutorials_mark_commands_of_every_kind():
    kinds = {kind for kind, _, _ in marked_blocks()}
    assert kinds == set(KINDS), kinds
    commands = [command for _, command, _ in marked_blocks()]
    assert "scripts/check --web 0" in commands


def run(command, timeout=RUN_TIMEOUT_S):
    """``command`` through bash from the checkout, its whole process tree stopped whatever happens."""
    popen = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=process_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = popen.communicate(timeout=timeout)
    finally:
        stop_tree(popen.pid)
    return popen.returncode, out, err


def ids(blocks):
    return [f"{page}: {command}" for _, command, page in blocks]


HELP = [block for block in marked_blocks() if block[0] == "help"]
REFUSED = [block for block in marked_blocks() if block[0] == "refused"]
VALID = [block for block in marked_blocks() if block[0] == "valid"]


@pytest.mark.parametrize("kind,command,page", HELP, ids=ids(HELP))
def test_a_help_command_shows_its_usage(kind, command, page):
    code, out, err = run(command)
    assert code == 0 and out.startswith("usage:"), out + err


@pytest.mark.parametrize("kind,command,page", REFUSED, ids=ids(REFUSED))
def test_a_refused_command_says_why_in_one_line(kind, command, page):
    code, out, err = run(command)
    lines = (out + err).strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, lines)


@pytest.mark.parametrize("kind,command,page", VALID, ids=ids(VALID))
def test_a_short_check_ends_valid(kind, command, page, tmp_path):
    code, out, err = run(f"{command} --report-dir {tmp_path}")
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert code == 0 and "VALID" in lines, out[-3000:] + err[-3000:]
    assert (tmp_path / "report.html").exists()


# -- docs/reference/commands.md against each command's own parser ------------------------------------------

OPTION_LINE = re.compile(r"^  (?:-\w(?: \S+)?, )?(--[a-z][a-z0-9-]*)", re.MULTILINE)
TABLE_OPTION = re.compile(r"^\| `(--[a-z][a-z0-9-]*)", re.MULTILINE)
# The Locust plugin's own options: Locust's parser with and without them (locust --help lists only its own).
LOCUST_PLUGIN_OPTIONS = """
from locust.argument_parser import LocustArgumentParser
from bench.load.options import add_arguments
plain, plugin = LocustArgumentParser(), LocustArgumentParser()
add_arguments(plugin)
print("\\n".join("  " + flag for flag in sorted(set(plugin._option_string_actions) - set(plain._option_string_actions))))
"""
COMMANDS = {  # the heading in commands.md: the commands whose options its tables list
    "scripts/check": ["scripts/check --help"],
    "scripts/probe": ["scripts/probe --help"],
    "scripts/ps": ["scripts/ps --help"],
    "scripts/scale": ["scripts/scale --help"],
    "scripts/clean": [],  # a shell script with one option: compared by hand below
    "locust -f bench/locustfile.py": [f"{VENV_BIN / 'python'} -c '{LOCUST_PLUGIN_OPTIONS}'"],
    "python -m bench.chaos": ["python -m bench.chaos --help", "python -m bench.chaos once --help"],
    "python -m bench.verdict": ["python -m bench.verdict --help"],
}


def sections(page):
    """{heading: text} for each ``## `command` `` section of ``page``."""
    parts = re.split(r"^## `([^`]+)`.*$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def documented_options(text):
    return set(TABLE_OPTION.findall(text))


@pytest.mark.fast
def test_a_missing_option_is_noticed():
    # The negative control for the comparison below: a table row is an option, a flag in a sentence is not.
    text = "| `--web` | `4` | web instances |\n| `--duration` | `30` | see `--web` |\nuse `--seed` too\n"
    assert documented_options(text) == {"--web", "--duration"}
    assert OPTION_LINE.findall("options:\n  -h, --help  show\n  --web WEB  web (not --hosts)\n") == ["--help", "--web"]


def test_every_command_option_is_documented():
    documented = sections(DOCS / "reference/commands.md")
    assert set(COMMANDS) <= documented.keys(), set(COMMANDS) - documented.keys()
    assert documented_options(documented["scripts/clean"]) == {"--yes"}
    assert "--yes" in (ROOT / "scripts/clean").read_text()
    problems = []
    for heading, helps in COMMANDS.items():
        if not helps:
            continue
        parsed = set()
        for command in helps:
            code, out, err = run(command)
            assert code == 0, f"{command}: {err}"
            parsed |= set(OPTION_LINE.findall(out)) - {"--help"}
        listed = documented_options(documented[heading])
        if parsed - listed:
            problems.append(f"{heading}: not in docs/reference/commands.md: {sorted(parsed - listed)}")
        if listed - parsed:
            problems.append(f"{heading}: in docs/reference/commands.md, not an option: {sorted(listed - parsed)}")
    assert not problems, "\n".join(problems)
