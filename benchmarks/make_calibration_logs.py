"""Make the synthetic-truth calibration example for Tonghui (shipped in watersupply/data/calibration).

The truth network is the bundled Tonghui model with the roughness of four diameter classes
changed by -35 % to +20 % and the demand of the nine reservoir zones by -15 % to +15 %
(watersupply.calibration.TONGHUI_DEMO). It is simulated for 72 h with WNTR (EPANET 2.2,
pressure-dependent demand, hydraulics only); 20 pressure loggers, every duty pump's flow, every
reservoir's level and two zone meters (TONGHUI_DEMO["flow_links"]: M00115, the R8 zone's supply main,
and M00116, R9's outlet) are logged hourly with noise (σ 0.2 m, 2 % of flow), seeded.

The 20 logger sites are chosen from the *initial* model (never the truth) by TONGHUI_DEMO["placement"]:
"spread" (watersupply.calibration.synthetic.choose_loggers: round-robin over the nine reservoir zones,
TONGHUI_DEMO["zones_by"], by head drop) for
the shipped files; "sensitivity" (greedy D-optimal on the sensitivity of hourly pressures over the fit
window, pump flow meters and reservoir levels counted as installed;
watersupply.calibration.sensors.place_loggers) is the alternative. Everything is deterministic (seeded
noise, ties to the first candidate), so re-running the script on the same model reproduces
the shipped files byte for byte; after the model changes, re-run it to regenerate them.

    python benchmarks/make_calibration_logs.py [OUT_FOLDER]

writes tonghui_logs.csv (time,element,quantity,value,unit) and tonghui_truth.csv
(group,kind,factor); the default folder is the package's data/calibration.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from watersupply.calibration import TONGHUI_DEMO, demand_groups, make_synthetic_logs, roughness_groups
from watersupply.loader import load_network
from watersupply.io import write_csv


def main(out: Path) -> None:
    t0 = time.perf_counter()
    net = load_network()
    demo = TONGHUI_DEMO
    groups = roughness_groups(net, by=demo["roughness_by"]) + demand_groups(net, by=demo["demand_by"])
    logs, truth = make_synthetic_logs(net, groups=groups, truth=demo["truth"], n_loggers=demo["n_loggers"],
                                      pressure_sigma_m=demo["pressure_sigma_m"], level_sigma_m=demo["level_sigma_m"],
                                      flow_sigma=demo["flow_sigma"], placement=demo["placement"],
                                      zones_by=demo["zones_by"], flow_links=demo["flow_links"],
                                      design_hours=demo["fit_window"], workers=2, seed=demo["seed"])
    write_csv(logs, out / "tonghui_logs.csv", index=False)
    write_csv(truth, out / "tonghui_truth.csv", index=False)
    counts = logs.groupby("quantity")["element"].nunique().to_dict()
    print(f"{len(logs)} readings from {counts} sensors in {out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    default = Path(__file__).resolve().parent.parent / "watersupply" / "data" / "calibration"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
