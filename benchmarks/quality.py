"""Time the baseline simulation with steady-state quality against one bare 72 h EPANET run.

Target (issue 14): ``run_simulation`` of the Tonghui model — hydraulics, then
chlorine and water age at periodic steady state — within 3 × one bare 72 h
EPANET run of the same model (hydraulics + chlorine, through WNTR). Both in one
process, alternated, so machine load hits both alike; the minimum of `repeat`
runs is reported. Also prints the horizon reached and the residual, the
machine's load before and after, and whether chlorine and age ran side by side
(two processes) or one after the other (``--sequential``, or no second core).

    python benchmarks/quality.py [repeat] [--sequential]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import wntr

from watersupply.engine import quiet_stdout
from watersupply.io import get_path, read_network
from watersupply.model import to_wntr
from watersupply.simulation import run_simulation


def bare_epanet(net: dict, workdir: Path) -> float:
    """One EPANET run of the model as built (72 h, hydraulics + chlorine), through WNTR."""
    wn = to_wntr(net, duration_h=72)
    t0 = time.perf_counter()
    with quiet_stdout():
        wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(workdir / "bare"), version=2.2)
    return time.perf_counter() - t0


def steady(net: dict) -> tuple[float, object]:
    t0 = time.perf_counter()
    res = run_simulation(net, duration_h=72)
    return time.perf_counter() - t0, res


def main(repeat: int = 2, *, sequential: bool = False) -> None:
    import watersupply.quality as quality

    if sequential:
        quality._can_fork = lambda: False
    net = read_network(get_path("tonghui"))
    load0 = os.getloadavg()[0]
    bares, runs, res = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            bares.append(bare_epanet(net, Path(tmp)))
            s, res = steady(net)
            runs.append(s)
    bare, run = min(bares), min(runs)
    q = res.quality
    print(f"load average (1 min) at the start {load0:.1f}, at the end {os.getloadavg()[0]:.1f}, "
          f"on {os.cpu_count()} cores")
    print(f"chlorine and age: {'side by side (two processes)' if quality._can_fork() else 'one after the other'}; "
          f"run_wntr (hydraulics + quality) of the last run {q.seconds:.1f} s")
    print(f"bare EPANET run (72 h, hydraulics + chlorine): {bare:.2f} s (runs: {', '.join(f'{b:.1f}' for b in bares)})")
    print(f"run_simulation with steady-state chlorine and age: {run:.2f} s (runs: {', '.join(f'{r:.1f}' for r in runs)})")
    print(f"ratio {run / bare:.2f} x bare; target 3 x -> {'met' if run <= 3 * bare else 'MISSED'}")
    print(q.summary())


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 2, sequential="--sequential" in sys.argv)
