"""``watersupply design`` on the classic Hanoi problem (Fujiwara and Khang 1990).

Runs the command as a user would, on the benchmark shipped in
``../shared/data/benchmarks/hanoi/`` (34 pipes, 6 diameters, minimum head 30 m),
then checks the answer independently of the command: ``designed.inp`` is
re-simulated with WNTR's EpanetSimulator and its cost recomputed from the
candidate table. Target (issue 17): ≤ 6.142 M$ (1 % over the best-known
6.081 M$), feasible in EPANET, within 10 minutes on 2 cores.

    python benchmarks/design_hanoi.py [--seed 1] [--data DIR] [-o DIR]

Prints cost, evaluations and time, and exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import wntr
from click.testing import CliRunner

from watersupply.cli.main import cli

BEST_KNOWN_MUSD = 6.081
TARGET_MUSD = 6.142
TIME_LIMIT_S = 600.0
_ROOT = Path(__file__).resolve().parents[1]
#: ``shared/`` beside the repository (a worktree sits one level deeper).
DEFAULT_DATA = next((p / "shared" / "data" / "benchmarks" / "hanoi" for p in (_ROOT.parent, _ROOT.parent.parent)
                     if (p / "shared" / "data" / "benchmarks" / "hanoi").is_dir()),
                    _ROOT.parent / "shared" / "data" / "benchmarks" / "hanoi")


def independent_check(out: Path, data: Path) -> tuple[float, float]:
    """Cost of designed.inp from the candidate table, and its minimum junction pressure (full EPANET run)."""
    wn = wntr.network.WaterNetworkModel(str(out / "designed.inp"))
    table = pd.read_csv(data / "candidates.csv")
    unit = dict(zip(table["diameter_mm"].round(1), table["unit_cost_usd_per_m"]))
    cost = 0.0
    for name in wn.pipe_name_list:
        pipe = wn.get_link(name)
        cost += pipe.length * unit[round(pipe.diameter * 1000.0, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(Path(tmp) / "check"))
    pmin = float(res.node["pressure"][wn.junction_name_list].min().min())
    return cost, pmin


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("-o", "--out", type=Path, default=Path("out") / "hanoi" / "design")
    args = ap.parse_args()
    data = args.data.resolve()
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, ["design", "--inp", str(data / "hanoi.inp"), "--candidates",
                                   str(data / "candidates.csv"), "--min-pressure", "30", "--seed", str(args.seed),
                                   "-o", str(args.out)])
    elapsed = time.perf_counter() - t0
    if res.exit_code != 0:
        print(res.output)
        return 1
    summary = pd.read_csv(args.out / "design_summary.csv").iloc[0]
    cost, pmin = independent_check(args.out, data)
    ok_cost = cost / 1e6 <= TARGET_MUSD
    ok_feasible = pmin >= 30.0 - 1e-6
    ok_time = elapsed <= TIME_LIMIT_S
    print(f"Hanoi (seed {args.seed}): cost {cost / 1e6:.4f} M$ (command says {summary['total_cost'] / 1e6:.4f}; "
          f"best known {BEST_KNOWN_MUSD}, target ≤ {TARGET_MUSD}) {'OK' if ok_cost else 'MISSED'}")
    print(f"  minimum pressure {pmin:.3f} m (≥ 30 m) {'OK' if ok_feasible else 'MISSED'}; "
          f"{int(summary['evaluations']):,} EPANET evaluations; {elapsed:.0f} s wall "
          f"(≤ {TIME_LIMIT_S:.0f} s) {'OK' if ok_time else 'MISSED'}")
    return 0 if (ok_cost and ok_feasible and ok_time) else 1


if __name__ == "__main__":
    sys.exit(main())
