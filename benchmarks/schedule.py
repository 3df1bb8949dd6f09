"""Time ``watersupply schedule`` on the Tonghui model and count its EPANET runs.

Reports, for the bundled model and the bundled (assumed) time-of-use tariff: the
wall time of the optimisation (baseline run, MILP rounds, verification runs,
final run with chlorine), of the 同价 recomputation (two audits) and of writing
the outputs; the number of full EPANET runs; the saving against the baseline
level controls; and whether every check passed. Target (issue 16): >= 15 % lower
daily energy cost, no service shortfall, tanks periodic, within 5 minutes on 2
cores. Say what else was running on the machine when you quote the figures.

    python benchmarks/schedule.py [--days 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from watersupply.loader import load_network
from watersupply.schedule import optimise_schedule
from watersupply.schedule.output import cost_to_serve, schedule_summary, write_schedule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    net = load_network()
    t0 = time.perf_counter()
    res = optimise_schedule(net, days=args.days, seed=args.seed)
    t1 = time.perf_counter()
    cost, notes = cost_to_serve(net, res)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_schedule(res, net, Path(tmp), cost=cost, notes=notes)
    t3 = time.perf_counter()
    s = schedule_summary(res).loc["total"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Tonghui, tariff {res.tariff.name}{' (assumed)' if res.tariff.assumed else ''}, {args.days}-day runs, "
          f"seed {args.seed}, {os.cpu_count()} cores, load average at the end {load:.1f}")
    print(f"  optimisation      {t1 - t0:6.1f} s  ({res.epanet_runs} full EPANET runs: baseline, "
          f"{len(res.iterations)} MILP+verification round(s), final run with chlorine)")
    print(f"  同价 recompute    {t2 - t1:6.1f} s  (audit of baseline and schedule)")
    print(f"  writing outputs   {t3 - t2:6.1f} s")
    print(f"  total             {t3 - t0:6.1f} s  (target <= 300 s)")
    print(f"  daily cost {s['baseline_cost_yuan_day']:,.0f} → {s['optimised_cost_yuan_day']:,.0f} ¥ "
          f"({s['saving_pct']:.1f} % saved, target >= 15 %); energy {s['baseline_kwh_day']:,.0f} → "
          f"{s['optimised_kwh_day']:,.0f} kWh/day")
    failed = list(res.checks.index[~res.checks["passed"]])
    print(f"  checks: {'all passed' if not failed else 'FAILED ' + ', '.join(failed)}")
    print(res.iterations.to_string())


if __name__ == "__main__":
    main()
