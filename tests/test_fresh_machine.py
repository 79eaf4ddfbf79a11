"""A fresh machine, for real: a Debian program hidden, installing turned off, and the tests that call it skip.

tests/test_netfaults.py runs in a pytest of its own, in a private mount namespace where /dev/null covers every
``nft`` (so neither PATH nor bench.packages finds one: as on a machine without nftables) and with
FACTOR6_NO_INSTALL=1 (so bench.packages installs nothing). It must pass or skip, with no error, each skip saying
why in one line. The control that the hiding worked: inside, ``nft`` is not found, and the tests that need it
skip with bench.packages' reason rather than pass.
"""
import os
import shutil
import subprocess
import sys

from bench.packages import NO_INSTALL
from tests.procs import ROOT, process_env
from tests.support import needs_namespaces

# Mounts /dev/null over each file named in $HIDDEN, then runs the command: mode 666, so nobody may execute it.
HIDE = 'for f in $HIDDEN; do mount --bind /dev/null "$f" || exit 97; done; exec "$@"'


def hidden(tool):
    """The files that are ``tool`` here: on PATH, and in the folders bench.packages also looks in."""
    places = {shutil.which(tool), *(f"{folder}/{tool}" for folder in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"))}
    return sorted(path for path in places if path and os.path.isfile(path))


def without(tool, argv):
    """``argv`` run where ``tool`` is hidden and nothing may be installed."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE, "-", *argv], cwd=ROOT,
                          env=process_env(HIDDEN=" ".join(hidden(tool)), **{NO_INSTALL: 1}), capture_output=True,
                          text=True, timeout=600)


@needs_namespaces
def test_without_nft_the_network_fault_tests_skip_with_the_reason_and_none_fails(tmp_path):
    probe = without("nft", ["sh", "-c", "command -v nft || echo none"])
    assert probe.returncode == 0 and probe.stdout.strip() == "none", probe.stdout + probe.stderr
    run = without("nft", [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-rs",
                          "--basetemp", str(tmp_path / "inner"), "tests/test_netfaults.py"])
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0 and "error" not in summary and "failed" not in summary, run.stdout[-3000:] + run.stderr
    reason = f"nft is not installed, and {NO_INSTALL} is set (apt-get install -y nftables)"
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED [1] ") and reason in line]
    assert len(skipped) == 3, run.stdout[-3000:]  # partition, oneway and loss: none installed it behind our back
