"""Packaging: the wheel carries its data and works installed, from any folder (issue 12).

The slow test builds the sdist and wheel with ``python -m build`` (without build
isolation: ``build`` and ``hatchling`` come with the ``test`` extra), installs the
wheel into a fresh virtual environment and runs the CLI there from an unrelated
folder. The venv sees the current environment's site-packages so the heavy
dependencies are not downloaded again; the test checks that ``watersupply`` is
imported from the venv (the installed wheel), not from a source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import watersupply
from watersupply._resources import data_dir, source_dir
from watersupply.io import NETWORKS_DIR
from watersupply.scenario import SCENARIOS_DIR, shipped_scenarios

ROOT = Path(__file__).resolve().parent.parent


def test_source_tree_data_is_found_beside_the_package():
    assert data_dir("networks") == NETWORKS_DIR == ROOT / "networks"
    assert data_dir("scenarios") == SCENARIOS_DIR == ROOT / "scenarios"
    assert source_dir("networks") == ROOT / "networks"
    assert [p.name for p in shipped_scenarios()] == sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml"))


def test_unknown_data_kind_is_named():
    with pytest.raises(ValueError, match="unknown bundled data kind 'network'; give one of networks, scenarios"):
        data_dir("network")


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)], cwd=ROOT)
    wheels = sorted(dist.glob("watersupply-*.whl"))
    sdists = sorted(dist.glob("watersupply-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def _tracked_package_files() -> list[str]:
    """Non-Python files of the package in the source tree (py.typed, maps/static assets, ...)."""
    pkg = ROOT / "watersupply"
    return sorted(str(p.relative_to(ROOT)).replace(os.sep, "/") for p in pkg.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)


@pytest.mark.slow
def test_wheel_carries_the_data_and_package_files(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    for kind in ("networks", "scenarios"):
        for p in sorted((ROOT / kind).rglob("*")):
            if p.is_file():
                rel = p.relative_to(ROOT / kind).as_posix()
                assert f"watersupply/_data/{kind}/{rel}" in names, f"{kind}/{rel} is not in the wheel"
    for rel in _tracked_package_files():
        assert rel in names, f"{rel} (package file) is not in the wheel"
    assert "watersupply/py.typed" in names
    assert not any(n.startswith(("networks/", "scenarios/", "tests/")) for n in names), "data outside the package"


@pytest.mark.slow
def test_installed_wheel_runs_from_an_unrelated_folder(built, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", "--no-index",
          str(built["wheel"])], cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    where = _run([str(py), "-c", "import watersupply, watersupply._resources as r; "
                  "print(watersupply.__file__); print(r.data_dir('networks')); print(r.source_dir('networks'))"],
                 cwd=work, env=env).splitlines()
    site = str(venv.resolve())
    assert where[0].startswith(site), f"watersupply imported from {where[0]}, not from the venv {site}"
    assert where[1].startswith(site) and where[1].endswith(os.path.join("_data", "networks")), where
    assert where[2] == "None"

    exe = str(bindir / "watersupply")
    _run([exe, "run", "--duration-h", "24"], cwd=work, env=env)  # with the map: its assets come from the wheel
    for name in ("summary.csv", "results.gpkg", "map.html"):
        assert (work / "out" / "tonghui" / name).stat().st_size > 0, name

    listed = _run([exe, "scenario", "list"], cwd=work, env=env)
    for p in shipped_scenarios():
        assert p.stem in listed, f"scenario {p.stem} missing from the installed `scenario list`:\n{listed}"

    _run([exe, "scenario", "run", "ps3_power_cut", "--no-map", "--no-age", "-w", "1"], cwd=work, env=env)
    assert (work / "out" / "tonghui" / "ps3_power_cut" / "diff.csv").is_file()

    # the installed package refuses to rewrite its own data
    proc = subprocess.run([exe, "generate"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "give the output folder with -o" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert watersupply.__file__.startswith(str(ROOT))  # this process still tests the source tree
