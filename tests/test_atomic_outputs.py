"""Atomic outputs: a run killed at any moment leaves complete files or none; reruns are identical."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyogrio
import pytest

from watersupply.io import write_network

OUTPUTS = ("results.gpkg", "summary.csv", "report.md", "map.html")


def _complete(path: Path) -> bool:
    """True when an output file is whole (parses to the end)."""
    name = path.name
    if name.endswith(".gpkg"):
        layers = {n for n, _ in pyogrio.list_layers(path)}
        if not {"nodes", "pipes", "settlements"} <= layers:
            return False
        return len(pyogrio.read_dataframe(path, layer="pipes")) > 0
    text = path.read_text(encoding="utf-8")
    if name.endswith(".html"):
        return text.rstrip().endswith("</html>")
    if name == "summary.csv":
        return len(pd.read_csv(path)) == 2  # one row per settlement of the tiny network
    if name.endswith(".csv"):
        pd.read_csv(path)
        return text.endswith("\n")
    if name == "report.md":
        return text.endswith("\n") and "Soundness checks" in text
    if name.endswith(".md"):
        return text.endswith("\n") and text.startswith("#")
    return True


def _cmd(net: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from watersupply.cli.main import cli; cli()", "run", "--network", str(net),
            "-o", str(out)]


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_truncated_output(tmp_path, tiny_net):
    net = write_network(tiny_net, tmp_path / "tiny.gpkg")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    subprocess.run(_cmd(net, out), check=True, capture_output=True, env=env, timeout=300)
    full = time.perf_counter() - t0
    previous = {n: (out / n).read_bytes() for n in OUTPUTS}
    rng = random.Random(1234)
    # most of a run is imports and the solve; the writes come in the last part
    moments = sorted(rng.uniform(0.55, 1.0) * full for _ in range(4))
    for delay in moments:
        proc = subprocess.Popen(_cmd(net, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        for name in OUTPUTS:
            path = out / name
            assert path.exists(), f"{name} vanished after a kill at {delay:.2f} s"
            assert _complete(path), f"{name} truncated after a kill at {delay:.2f} s"
            if name.endswith((".csv", ".md")):
                # same inputs: the rewritten file is the same bytes as before
                assert path.read_bytes() == previous[name]
    # a re-run after the kills succeeds
    done = subprocess.run(_cmd(net, out), capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert all(_complete(out / n) for n in OUTPUTS)


@pytest.mark.slow
def test_first_run_killed_leaves_no_partial_files(tmp_path, tiny_net):
    net = write_network(tiny_net, tmp_path / "tiny.gpkg")
    out = tmp_path / "fresh"
    for delay in (3.5, 5.0):
        proc = subprocess.Popen(_cmd(net, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if out.exists():
            for path in out.iterdir():
                if not path.name.startswith("."):
                    assert _complete(path), f"{path.name} truncated after a kill at {delay} s"


def test_two_runs_give_identical_tables(tmp_path, tiny_net):
    from watersupply.baseline import run_baseline

    run_baseline(tiny_net, out_dir=tmp_path / "a", make_map=False)
    run_baseline(tiny_net, out_dir=tmp_path / "b", make_map=False)
    for name in ("summary.csv", "report.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for layer, _ in pyogrio.list_layers(tmp_path / "a" / "results.gpkg"):
        a = pyogrio.read_dataframe(tmp_path / "a" / "results.gpkg", layer=layer)
        b = pyogrio.read_dataframe(tmp_path / "b" / "results.gpkg", layer=layer)
        pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
