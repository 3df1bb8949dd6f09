"""``watersupply design food_park_expansion`` on the bundled Tonghui model (issue 17 item 5), checked independently.

Runs the command as a user would (default options), then checks the answer
without the project's design code: ``designed.inp`` is read by WNTR, the
scenario's one event (+8,335 m³/d at the park hub J00469 on the 'industrial'
pattern) is added by hand, the 72 h run is re-simulated with WNTR's
EpanetSimulator and every node of ``pressure_check.csv`` is compared with its
required head; the diameters in ``designed.inp`` are compared with
``works.csv`` and the total cost is recomputed from the rows of ``works.csv``
(pipes: length × unit cost).

    python benchmarks/design_food_park.py [--network NAME] [-o DIR]

Prints cost, evaluations, wall time and the verdicts; exits non-zero when the
design is not feasible or a check disagrees.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import wntr
from click.testing import CliRunner

from watersupply.cli.main import cli

PARK_NODE = "J00469"
PARK_M3D = 8335.0
PARK_PATTERN = "industrial"


def independent_check(out: Path) -> dict[str, float]:
    """Re-simulate designed.inp with the park demand added by hand; recompute the works' cost."""
    wn = wntr.network.WaterNetworkModel(str(out / "designed.inp"))
    wn.options.time.duration = 72 * 3600
    wn.options.hydraulic.demand_model = "DDA"
    node = wn.get_node(PARK_NODE)
    node.add_demand(PARK_M3D / 86400.0, wn.get_pattern(PARK_PATTERN))
    with tempfile.TemporaryDirectory() as tmp:
        res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=os.path.join(tmp, "check"))
    req = pd.read_csv(out / "pressure_check.csv", index_col="node")["required_m"]
    margin = res.node["pressure"][list(req.index.astype(str))].min() - req.to_numpy()
    works = pd.read_csv(out / "works.csv", keep_default_na=False)
    cost_col = next(c for c in works.columns if c.startswith("cost_"))
    unit_col = next(c for c in works.columns if c.startswith("unit_cost_"))
    pipes = works[works["pipe"].astype(str) != ""]
    pipe_cost = float((pd.to_numeric(pipes["length_m"]) * pd.to_numeric(pipes[unit_col])).sum())
    other_cost = float(pd.to_numeric(works.loc[works["pipe"].astype(str) == "", cost_col]).sum())
    d_ok = all(abs(wn.get_link(str(w.pipe)).diameter * 1000.0 - float(w.new_diameter_mm)) < 0.05
               for w in pipes.itertuples(index=False))
    return {"min_margin_m": float(margin.min()), "worst_node": str(margin.idxmin()),
            "nodes_below": int((margin < -1e-3).sum()), "cost": pipe_cost + other_cost, "diameters_match": d_ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default=None, help="A bundled network's name (default: the default model).")
    ap.add_argument("-o", "--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path("out") / (args.network or "tonghui") / "design"
    argv = ["design", "food_park_expansion", "-o", str(out)] + (["--network", args.network] if args.network else [])
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, argv)
    elapsed = time.perf_counter() - t0
    print(res.output)
    if res.exit_code != 0:
        return 1
    s = pd.read_csv(out / "design_summary.csv").iloc[0]
    chk = independent_check(out)
    load = os.getloadavg()[0]
    ok = bool(s["feasible"]) and bool(s["rerun_passes"]) and chk["nodes_below"] == 0 and chk["diameters_match"] \
        and abs(chk["cost"] - float(s["total_cost"])) <= 1.0
    print(f"food_park_expansion on {args.network or 'the default model'}: cost {float(s['total_cost']):,.0f} "
          f"{s['currency']} (recomputed from works.csv: {chk['cost']:,.0f}); {int(s['evaluations'])} EPANET "
          f"evaluations; {elapsed:.0f} s wall (load average {load:.1f})")
    print(f"  command: feasible {bool(s['feasible'])}, scenario re-run passes {bool(s['rerun_passes'])}; "
          f"independent 72 h re-simulation: {chk['nodes_below']} node(s) below their required head, smallest "
          f"margin {chk['min_margin_m']:+.2f} m at {chk['worst_node']}; diameters match works.csv "
          f"{chk['diameters_match']} — {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
