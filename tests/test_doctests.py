"""The usage examples in the modules' docstrings run: every module of the project that has one, found here by
reading the source, so that a new module's examples are tested without anyone listing it.

A doctest collector that found no example would pass in silence; here the modules found must be the ones with
``>>>`` in their text, and each must run at least one. Modules whose examples use ``client`` get a real Redis
client (a server of their own, empty), as the processes that import them do.
"""
import doctest
import importlib

import pytest

from bench.paths import ROOT

PACKAGES = ("common", "backing", "web", "proxy", "scaler", "bench")


def with_examples():
    """Every module of the project's packages whose source has a ``>>>`` example, and whether it uses ``client``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if ">>> " in text:
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                found[module] = "client" in "".join(line for line in text.splitlines() if ">>> " in line)
    return found


EXAMPLES = with_examples()


def run_examples(name, client=None):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, extraglobs={"client": client} if client else None)
    assert result.attempted > 0, f"{name} has >>> in its text but no example doctest runs"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"


@pytest.mark.fast
def test_the_search_finds_the_modules_with_examples():
    assert {"common.settings", "bench.verdict.checker", "bench.probe.spec", "web.hits"} <= set(EXAMPLES)
    assert len(EXAMPLES) > 40


@pytest.mark.fast
@pytest.mark.parametrize("name", [name for name, client in EXAMPLES.items() if not client])
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # scaler.procfile's and bench.probe.spec's examples read files of the repo
    run_examples(name)


@pytest.mark.parametrize("name", [name for name, client in EXAMPLES.items() if client])
def test_docstring_examples_run_on_a_real_redis(name, redis_client, monkeypatch):
    monkeypatch.chdir(ROOT)
    run_examples(name, redis_client)
