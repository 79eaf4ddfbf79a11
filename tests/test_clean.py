"""scripts/clean lists by default and removes only with --yes, only reports/ and data/ (on a copy of the checkout)."""
import shutil
import subprocess

import pytest

from tests.procs import ROOT

pytestmark = pytest.mark.fast


def test_clean_lists_then_removes_reports_and_data_only(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/clean", tmp_path / "scripts/clean")
    for kept_or_not in ("reports/run1", "data/redis-6379", "web"):
        (tmp_path / kept_or_not).mkdir(parents=True)
        (tmp_path / kept_or_not / "file").write_text("x")
    clean = [str(tmp_path / "scripts/clean")]
    listed = subprocess.run(clean, capture_output=True, text=True, check=True).stdout
    assert "would remove" in listed and (tmp_path / "reports/run1/file").exists()
    subprocess.run(clean + ["--yes"], capture_output=True, text=True, check=True)
    assert not (tmp_path / "reports").exists() and not (tmp_path / "data").exists()
    assert (tmp_path / "web/file").exists()
    assert subprocess.run(clean + ["--all"], capture_output=True, text=True).returncode == 2
