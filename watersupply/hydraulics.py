"""Physical constants, unit conversions and the hydraulic formulas, in one place.

Everything in the package is SI: m, m³/s, m of head. Layers keep a few
engineering units in their column names (``base_demand_m3d``, ``design_flow_ls``,
``diameter_mm``); the conversions below are the only ones used.

>>> round(float(hazen_williams_headloss(0.01, length_m=1000.0, roughness_c=130.0, diameter_m=0.1)), 2)
19.06
>>> M3D_TO_M3S * 86_400
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "G", "RHO_WATER", "SECONDS_PER_HOUR", "SECONDS_PER_DAY", "M3D_TO_M3S", "LS_TO_M3S", "MGL_TO_KGM3", "MM_TO_M",
    "HW_K", "HW_FLOW_EXPONENT", "HW_DIAMETER_EXPONENT", "hazen_williams_headloss", "minor_headloss",
    "expected_demand", "pump_power_kw", "node_leakage",
]

#: Standard gravity, m/s².
G = 9.81
#: Density of water, kg/m³.
RHO_WATER = 1000.0
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86_400.0
#: m³/d → m³/s.
M3D_TO_M3S = 1.0 / SECONDS_PER_DAY
#: L/s → m³/s.
LS_TO_M3S = 1e-3
#: mg/L → kg/m³ (WNTR keeps concentrations in kg/m³).
MGL_TO_KGM3 = 1e-3
MM_TO_M = 1e-3

#: Hazen-Williams in SI as EPANET 2.2 writes it: h = 10.667 C^-1.852 d^-4.871 L q^1.852
#: (EPANET's resistance 4.727 in US units is 10.667 in SI).
HW_K = 10.667
HW_FLOW_EXPONENT = 1.852
HW_DIAMETER_EXPONENT = 4.871


def hazen_williams_headloss(flow_m3s: float | np.ndarray, *, length_m: float | np.ndarray,
                            roughness_c: float | np.ndarray, diameter_m: float | np.ndarray) -> np.ndarray:
    """Head loss (m) of a pipe by Hazen-Williams, signed like the flow (m³/s)."""
    q = np.asarray(flow_m3s, dtype=float)
    return (np.sign(q) * HW_K * np.asarray(length_m) * np.abs(q) ** HW_FLOW_EXPONENT
            / (np.asarray(roughness_c, dtype=float) ** HW_FLOW_EXPONENT
               * np.asarray(diameter_m, dtype=float) ** HW_DIAMETER_EXPONENT))


def pump_power_kw(flow_m3s, head_m, efficiency):
    """Shaft power (kW) a pump draws to lift `flow_m3s` by `head_m` at `efficiency` (0–1): ρ g Q H / η.

    >>> round(float(pump_power_kw(0.05, 40.0, 0.75)), 2)
    26.16
    """
    return RHO_WATER * G * np.asarray(flow_m3s, dtype=float) * np.asarray(head_m, dtype=float) \
        / np.asarray(efficiency, dtype=float) / 1000.0


def minor_headloss(flow_m3s: float | np.ndarray, *, k: float | np.ndarray,
                   diameter_m: float | np.ndarray) -> np.ndarray:
    """Minor (fitting) head loss k v²/2g in m, signed like the flow."""
    q = np.asarray(flow_m3s, dtype=float)
    area = np.pi * np.asarray(diameter_m, dtype=float) ** 2 / 4.0
    v = q / area
    return np.sign(q) * np.asarray(k, dtype=float) * v * v / (2.0 * G)


def expected_demand(wn, hours: Sequence[float] | pd.Index) -> pd.DataFrame:
    """Requested demand (m³/s) at every node and hour: Σ base × pattern × demand multiplier.

    Follows EPANET: patterns are shifted by PATTERN START only (not by START
    CLOCKTIME), repeat when shorter than the run, and a demand that names no
    pattern takes the network's default pattern (none: a constant 1).
    A vectorised equivalent of ``wntr.metrics.expected_demand``.
    """
    t = wn.options.time
    step = float(t.pattern_timestep) or SECONDS_PER_HOUR
    secs = np.asarray(hours, dtype=float) * SECONDS_PER_HOUR + float(t.pattern_start)
    mult = float(wn.options.hydraulic.demand_multiplier)
    default = wn.options.hydraulic.pattern
    cache: dict[str | None, np.ndarray] = {}

    def factors(name: str | None) -> np.ndarray:
        if name not in cache:
            pat = wn.get_pattern(name) if name is not None and name in wn.pattern_name_list else None
            if pat is None or len(pat.multipliers) == 0:
                cache[name] = np.ones(len(secs))
            else:
                m = np.asarray(pat.multipliers, dtype=float)
                cache[name] = m[(np.floor(secs / step).astype(int)) % len(m)]
        return cache[name]

    cols: dict[str, np.ndarray] = {}
    for name in wn.node_name_list:
        node = wn.get_node(name)
        total = np.zeros(len(secs))
        for d in getattr(node, "demand_timeseries_list", []):
            pname = d.pattern_name if d.pattern_name is not None else default
            total = total + d.base_value * factors(pname)
        cols[name] = total * mult
    return pd.DataFrame(cols, index=pd.Index(np.asarray(hours, dtype=float), name="time_h"))


def node_leakage(net: Mapping[str, pd.DataFrame], pressure: pd.DataFrame, *, exponent: float) -> pd.DataFrame:
    """Leakage (m³/s) at every node with a ``leakage_coeff`` and hour: C·max(p, 0)^N, EPANET's emitter law."""
    nodes = net["nodes"]
    if "leakage_coeff" not in nodes.columns:
        return pd.DataFrame(index=pressure.index)
    c = pd.to_numeric(nodes["leakage_coeff"], errors="coerce").fillna(0.0)
    c.index = nodes["id"].astype(str)
    c = c[(c > 0) & c.index.isin(pressure.columns)]
    p = pressure[c.index].clip(lower=0.0)
    return p.pow(exponent).mul(c, axis=1)
