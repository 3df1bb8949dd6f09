"""``python -m watersupply`` (watersupply/__main__.py) and ``python -m watersupply.cli.main`` run the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["watersupply", "watersupply.cli.main"])
def test_module_runs_the_cli(module: str, tmp_path) -> None:
    ok = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("Usage: watersupply "), ok.stdout[:200]
    assert "criticality" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", module, "no-such-command"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 2
    assert "No such command 'no-such-command'" in bad.stderr
    assert "Traceback" not in bad.stderr
