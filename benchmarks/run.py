"""Time ``watersupply run`` on the Tonghui model against one bare EPANET run of the same model.

Both in one process (imports warmed up first), so the comparison is the work
itself. Target (issue 2): the whole run, files and map included, within
2 × bare + 5 s.

    python benchmarks/run.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import wntr
from click.testing import CliRunner

from watersupply.cli.main import cli
from watersupply.io import get_path


def bare_epanet(inp: Path, workdir: Path) -> float:
    """One EPANET run of the bundled INP as it is (72 h, hydraulics + chlorine), through WNTR."""
    t0 = time.perf_counter()
    wn = wntr.network.WaterNetworkModel(str(inp))
    wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(workdir / "bare"))
    return time.perf_counter() - t0


def full_run(out: Path) -> float:
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, ["-q", "run", "-o", str(out)])
    if res.exit_code != 0:
        raise SystemExit(res.output)
    return time.perf_counter() - t0


def main(repeat: int = 3) -> None:
    inp = get_path("tonghui", kind="inp")
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        bare_epanet(inp, tmpd)  # warm-up: imports, EPANET library load
        full_run(tmpd / "warm")
        bare = min(bare_epanet(inp, tmpd) for _ in range(repeat))
        run = min(full_run(tmpd / f"out{i}") for i in range(repeat))
        sizes = {p.name: p.stat().st_size for p in (tmpd / "out0").iterdir()}
    target = 2 * bare + 5
    print(f"bare EPANET run (72 h, hydraulics + chlorine): {bare:.2f} s")
    print(f"watersupply run (simulate, age, metrics, audit, gpkg, csv, md, map): {run:.2f} s")
    print(f"target 2 x bare + 5 s = {target:.2f} s -> {'met' if run <= target else 'MISSED'} "
          f"(ratio {run / bare:.2f} x bare)")
    print("output sizes:", ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
