"""Synthetic field logs from a perturbed "truth" network, for testing calibration.

:func:`make_synthetic_logs` perturbs roughness and demand groups, simulates the
truth with WNTR (EPANET 2.2, pressure-dependent demand, as every run of the
project), and samples pressure loggers, pump flows and reservoir levels with
Gaussian noise. The Tonghui demonstration (:data:`TONGHUI_DEMO`) is shipped as
``watersupply/data/calibration/tonghui_logs.csv`` (with ``tonghui_truth.csv``),
made by ``benchmarks/make_calibration_logs.py``; :func:`example_path` finds them
inside the installed package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import ConfigError
from ..hydraulics import LS_TO_M3S
from ..schema import Network
from .groups import Group

__all__ = ["TONGHUI_DEMO", "EXAMPLES", "example_path", "choose_loggers", "make_synthetic_logs"]

#: The Tonghui demonstration: truth factors (roughness by diameter class, demand by zone), loggers, noise.
TONGHUI_DEMO: dict[str, Any] = {
    "roughness_by": "diameter",
    "demand_by": "reservoir_zone",   # the nine reservoir zones (the model's pressure zones R1-Z1 ... in them)
    "truth": {"C:DN<80": 0.75, "C:DN80-130": 0.70, "C:DN130-260": 1.20, "C:DN>=260": 0.65,
              "D:R1": 1.12, "D:R2": 0.90, "D:R3": 1.15, "D:R4": 0.88, "D:R5": 1.06,
              "D:R6": 0.85, "D:R7": 1.10, "D:R8": 0.92, "D:R9": 1.08},
    "n_loggers": 20,
    "placement": "spread",
    "zones_by": "reservoir_zone",   # the spread placement goes round the nine reservoir zones, not the pressure zones
    # zone meters on the supply mains of the two gravity-fed village zones: R8 → PRV-183 (the R8 zone's only
    # demand) and R9's outlet; without them D:R8 and D:R9 are confounded (r = -0.96) through the R8 → R9 fill
    "flow_links": ("M00115", "M00116"),
    "pressure_sigma_m": 0.2,
    "level_sigma_m": 0.2,
    "flow_sigma": 0.02,
    "seed": 20260718,
    "fit_window": (0.0, 48.0),
    "validate_window": (48.0, 72.0),
}

#: Example files shipped in ``watersupply/data/calibration``.
EXAMPLES = ("tonghui_logs.csv", "tonghui_truth.csv")


def example_path(name: str = "tonghui_logs.csv") -> Path:
    """Path of a bundled calibration example (found with :mod:`importlib.resources`, so it works from a wheel).

    >>> example_path().name
    'tonghui_logs.csv'
    """
    if name not in EXAMPLES:
        raise ConfigError(f"no calibration example {name!r}; available: {', '.join(EXAMPLES)}")
    ref = resources.files("watersupply") / "data" / "calibration" / name
    if not ref.is_file():
        raise ConfigError(f"calibration example {name!r} is missing from the installed package; reinstall watersupply")
    with resources.as_file(ref) as p:
        return Path(p)


def choose_loggers(result: Any, net: Network, *, n: int, by: str = "zone") -> list[str]:
    """Pick `n` pressure-logger nodes: round-robin over zones (largest demand first), in each zone the
    demand node with the largest head drop below the zone's highest head, then the median one, then
    the upper and lower quartiles.

    A documented, deterministic rule a utility could follow from the model alone (`result` is a run
    of the initial model). `by` names the zones as the demand groups do
    (:func:`~watersupply.calibration.groups.zone_labels`): on a network cut into pressure zones
    (``R1-Z1``, ``R1-Z2``, …) ``"reservoir_zone"`` spreads the loggers over the reservoir zones;
    ``"zone"`` would put them all in the few pressure zones with the largest demand.
    """
    from .groups import zone_labels

    nodes = net["nodes"]
    label = zone_labels(net, by=by)
    ids_all = nodes["id"].astype(str)
    lab = pd.Series(label.reindex(ids_all.to_numpy()).to_numpy(), index=nodes.index)
    is_demand = (nodes["kind"] == "junction") & (pd.to_numeric(nodes["base_demand_m3d"], errors="coerce") > 0)
    head = result.head.mean()
    order: dict[str, list[str]] = {}
    demand = nodes.loc[is_demand, "base_demand_m3d"].astype(float).groupby(lab[is_demand]).sum() \
        .sort_values(ascending=False, kind="stable")
    for zone in demand.index:
        ids = ids_all[is_demand & (lab == zone)].tolist()
        zone_nodes = ids_all[lab == zone]
        drop = (head[zone_nodes].max() - head[ids]).sort_values(ascending=False, kind="stable")
        ranked = drop.index.tolist()
        picks = []
        for q in (0.0, 0.5, 0.25, 0.75, 0.1, 0.9, 0.4, 0.6):
            k = min(int(round(q * (len(ranked) - 1))), len(ranked) - 1)
            if ranked[k] not in picks:
                picks.append(ranked[k])
        order[str(zone)] = picks
    out: list[str] = []
    rnd = 0
    while len(out) < n and any(rnd < len(v) for v in order.values()):
        for zone in order:
            if rnd < len(order[zone]) and len(out) < n:
                out.append(order[zone][rnd])
        rnd += 1
    return out


def make_synthetic_logs(net: Network, *, groups: Sequence[Group], truth: Mapping[str, float], n_loggers: int = 20,
                        step_h: float = 1.0, pressure_sigma_m: float = 0.2, level_sigma_m: float = 0.2,
                        flow_sigma: float = 0.02, flow_links: Sequence[str] = (), placement: str = "spread",
                        loggers: Sequence[str] | None = None, design_hours: tuple[float, float] | None = None,
                        zones_by: str = "zone", workers: int = 1, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Field logs of a truth network: `groups` scaled by `truth`, simulated, sampled with noise.

    Parameters
    ----------
    groups, truth
        Calibration groups and the truth factor of each perturbed one (others stay at 1).
    n_loggers
        Pressure loggers; every open pump's flow and every reservoir's level are logged too.
    placement
        How the loggers are sited, from the initial model only (never the truth): ``"spread"``
        (:func:`choose_loggers`, by zone and head drop) or ``"sensitivity"``
        (:func:`~watersupply.calibration.sensors.place_loggers`: greedy D-optimal on the sensitivity
        of hourly readings over `design_hours` to the `groups`, the pump flows and levels counted).
    zones_by
        The zones the ``"spread"`` placement goes round (as the demand groups: ``"zone"``,
        ``"reservoir_zone"`` or ``"settlement"``).
    loggers
        Explicit logger nodes instead (`n_loggers` and `placement` are then ignored).
    design_hours
        Hours ``(start, end)`` the sensitivity placement considers (default: the whole run).
    workers
        Processes for the sensitivity placement.
    flow_links
        Further links (pipes) whose flow is logged.
    step_h
        Logging interval (h).
    pressure_sigma_m, level_sigma_m, flow_sigma
        Noise: σ in m, and σ of flows as a share of the reading.

    Returns
    -------
    logs : DataFrame
        ``time,element,quantity,value,unit`` (pressure and level in m, flow in L/s).
    truth : DataFrame
        ``group,kind,factor`` for every group.
    """
    from .fit import apply_parameters, hydraulics

    unknown = sorted(set(truth) - {g.name for g in groups})
    if unknown:
        raise ConfigError(f"truth names unknown group(s) {', '.join(unknown)}; groups are "
                          f"{', '.join(g.name for g in groups)}")
    if placement not in ("spread", "sensitivity"):
        raise ConfigError(f"unknown logger placement {placement!r}; use 'spread' or 'sensitivity'")
    initial = hydraulics(net)
    pumps = net.get("pumps")
    meters = list(flow_links)
    if pumps is not None and len(pumps):
        meters += sorted(pumps.loc[pumps["status"].astype(str).str.upper() != "CLOSED", "id"].astype(str))
    tanks = sorted(initial.tank_level.columns)
    if loggers is not None:
        loggers = list(loggers)
    elif placement == "spread":
        loggers = choose_loggers(initial, net, n=n_loggers, by=zones_by)
    else:
        from .sensors import place_loggers

        hours = initial.hours.to_numpy(dtype=float)
        h0, h1 = design_hours if design_hours is not None else (float(hours.min()), float(hours.max()))
        grid = hours[(hours >= h0) & (hours <= h1) & np.isclose(np.mod(hours + 1e-9, step_h), 0.0, atol=1e-6)]
        loggers = place_loggers(net, groups, n=n_loggers, hours=grid, workers=workers,
                                installed=[(m, "flow") for m in meters] + [(t, "level") for t in tanks])
    true_net = apply_parameters(net, groups, truth)
    res = hydraulics(true_net)
    hours = res.hours.to_numpy(dtype=float)
    keep = np.isclose(np.mod(hours + 1e-9, step_h), 0.0, atol=1e-6)
    times = hours[keep]
    rng = np.random.default_rng(seed)
    rows = []
    for el in loggers:
        v = res.pressure[el].to_numpy()[keep] + rng.normal(0.0, pressure_sigma_m, keep.sum())
        rows += [(t, el, "pressure", round(float(x), 3), "m") for t, x in zip(times, v)]
    for pid in meters:
        q = res.flow[pid].to_numpy()[keep] / LS_TO_M3S
        v = q * (1.0 + rng.normal(0.0, flow_sigma, keep.sum()))
        rows += [(t, pid, "flow", round(float(x), 3), "L/s") for t, x in zip(times, v)]
    for tank in sorted(res.tank_level.columns):
        v = res.tank_level[tank].to_numpy()[keep] + rng.normal(0.0, level_sigma_m, keep.sum())
        rows += [(t, tank, "level", round(float(x), 3), "m") for t, x in zip(times, v)]
    logs = pd.DataFrame(rows, columns=["time", "element", "quantity", "value", "unit"])
    logs = logs.sort_values(["time", "quantity", "element"], kind="stable").reset_index(drop=True)
    tdf = pd.DataFrame([(g.name, g.kind, float(truth.get(g.name, 1.0))) for g in groups],
                       columns=["group", "kind", "factor"])
    return logs, tdf
