"""The baseline run: simulate a network, summarise it and write the outputs.

:func:`run_baseline` is what ``watersupply run`` calls. It writes, each file
atomically, into one output folder:

- ``results.gpkg`` — nodes, pipes, pumps, facilities and settlements with their
  summary results as attributes (opens in QGIS);
- ``summary.csv`` — one row per settlement;
- ``pressure.csv`` — hourly pressure at the demand nodes (m, 0.1 m), for ``watersupply map --results``;
- ``report.md`` — the bilingual report with the soundness checks;
- ``map.html`` — the service map.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from . import metrics
from .io import write_csv, write_layers, write_text
from .model import metadata
from .report import baseline_report
from .schema import Network
from .simulation import SimulationResult, run_simulation
from .standards import thresholds

__all__ = ["BaselineRun", "summarise", "result_layers", "run_baseline", "network_facts"]

log = logging.getLogger(__name__)


@dataclass
class BaselineRun:
    """A simulated network with its summaries, and the files written (if any)."""

    net: Network
    result: SimulationResult
    nodes: pd.DataFrame
    pipes: pd.DataFrame
    pumps: pd.DataFrame
    settlements: pd.DataFrame
    soundness: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)
    audit: Any = None  #: the 同网·同价·同质 audit (watersupply.audit.AuditResult), when computed


def network_facts(net: Network) -> dict[str, object]:
    """Counts and lengths of a network, as reported (lengths from the geometry, km)."""
    nodes, pipes = net["nodes"], net["pipes"]
    fac = net.get("facilities")
    st = net.get("settlements")
    facts: dict[str, object] = {}
    if fac is not None and len(fac):
        # a facility that is part of another (a plant's clear well, 清水池) is not counted on its own
        own = fac["part_of"].isna() if "part_of" in fac else pd.Series(True, index=fac.index)
        for kind, label in (("plant", "水厂 plants"), ("pump_station", "泵站 pump stations"),
                            ("reservoir", "水池 reservoirs")):
            facts[label] = int(((fac["kind"] == kind) & own).sum())
    if st is not None and len(st):
        facts["村 villages"] = int((st["kind"] == "village").sum())
        facts["社区 communities"] = int((st["kind"] == "community").sum())
        facts["人口 population"] = int(pd.to_numeric(st["population"]).sum())
    # lengths as simulated (length_m); the geometry only where the attribute is missing
    geom_len = pipes.geometry.length if isinstance(pipes, gpd.GeoDataFrame) else pd.Series(0.0, index=pipes.index)
    length = pd.to_numeric(pipes["length_m"], errors="coerce").fillna(geom_len) if "length_m" in pipes else geom_len
    cls = pipes["class"] if "class" in pipes else pd.Series("main", index=pipes.index)
    facts["主管网 mains km"] = round(float(length[cls == "main"].sum()) / 1000.0, 2)
    facts["支管网 branches km"] = round(float(length[cls == "branch"].sum()) / 1000.0, 2)
    facts["节点 nodes"] = len(nodes)
    facts["管段 pipes"] = len(pipes)
    facts["用水节点 demand nodes"] = len(metrics.demand_nodes(net))
    if isinstance(nodes, gpd.GeoDataFrame) and nodes.crs is not None:
        facts["CRS"] = nodes.crs.to_string()
    return facts


def summarise(net: Network, result: SimulationResult, t: dict[str, float] | None = None) -> BaselineRun:
    """Compute node, pipe, pump and settlement summaries and the soundness checks."""
    t = t or thresholds()
    ns = metrics.node_summary(result, net, t)
    return BaselineRun(net=net, result=result, nodes=ns, pipes=metrics.pipe_summary(result, net),
                       pumps=metrics.pump_energy(result, net, t),
                       settlements=metrics.settlement_summary(result, net, t),
                       soundness=metrics.soundness(result, net, t))


def _join(layer: gpd.GeoDataFrame, table: pd.DataFrame, key: str = "id") -> gpd.GeoDataFrame:
    extra = table.drop(columns=[c for c in table.columns if c in layer.columns and c != key], errors="ignore")
    out = layer.merge(extra, left_on=key, right_index=True, how="left")
    return gpd.GeoDataFrame(out, geometry=layer.geometry.name, crs=layer.crs)


def _cost_estimate(net: Network) -> object | None:
    """The capital-cost estimate of a network whose pipes are sized from the catalogue (``dn_mm``, ``pn_mpa``),
    else None; a problem with the rates becomes the reason written in the report."""
    if not {"dn_mm", "pn_mpa"} <= set(net["pipes"].columns):
        return None
    from ._errors import WatersupplyError
    from .costing import capital_cost

    try:
        return capital_cost(net)
    except WatersupplyError as exc:
        log.warning("capital cost not estimated: %s", exc)
        return str(exc)


def result_layers(run: BaselineRun) -> dict[str, gpd.GeoDataFrame]:
    """The network's spatial layers with the run's summaries joined as attributes."""
    net = run.net
    layers: dict[str, gpd.GeoDataFrame] = {
        "nodes": _join(net["nodes"], run.nodes),
        "pipes": _join(net["pipes"], run.pipes),
    }
    if "pumps" in net and len(net["pumps"]):
        layers["pumps"] = _join(net["pumps"], run.pumps)
    if "facilities" in net and len(net["facilities"]):
        layers["facilities"] = net["facilities"]
    if "settlements" in net and len(net["settlements"]):
        layers["settlements"] = _join(net["settlements"], run.settlements)
    if "zones" in net and len(net["zones"]):
        layers["zones"] = net["zones"]  # pressure zones (watersupply.zones), drawn on the map
    return layers


def _leakage(net: Network, result: Any) -> dict[str, float] | None:
    if getattr(result, "leakage", None) is None:
        return None
    from .leakage import leakage_summary
    return leakage_summary(net, result)


def run_baseline(net: Network, *, out_dir: str | os.PathLike | None = None, make_map: bool = True,
                 t: dict[str, float] | None = None, with_audit: bool | None = None, **options: Any) -> BaselineRun:
    """Simulate the baseline and (if `out_dir` is given) write its outputs.

    Parameters
    ----------
    net
        Network layers (validated).
    out_dir
        Output folder; created when needed. Nothing is written when None.
    make_map
        Also write ``map.html``.
    t
        Thresholds (see :func:`watersupply.standards.thresholds`).
    with_audit
        Run the 同网·同价·同质 audit (:func:`watersupply.audit.audit`; writes
        ``audit.csv``, ``audit.md``, an ``audit`` layer and verdict columns on
        the settlements). Default: when `out_dir` is given and the network has settlements.
    **options
        Simulation options, e.g. ``duration_h``.
    """
    t = t or thresholds()
    result = run_simulation(net, **options)
    run = summarise(net, result, t)
    if (with_audit if with_audit is not None else out_dir is not None) and \
            net.get("settlements") is not None and len(net["settlements"]):
        from .audit import audit as audit_settlements

        run.audit = audit_settlements(net, result, t=t)
    if out_dir is None:
        return run
    out = Path(out_dir)
    md = metadata(net)
    layers = result_layers(run)
    if run.audit is not None:
        from .audit import DIMENSIONS, audit_layer

        cols = ["score", "verdict"] + [f"{d}_verdict" for d in DIMENSIONS]
        layers["settlements"] = _join(layers["settlements"], run.audit.table[cols])
        layers["audit"] = audit_layer(net, run.audit)
    run.files["results.gpkg"] = write_layers(layers, out / "results.gpkg")
    summary = run.settlements.copy()
    run.files["summary.csv"] = write_csv(summary, out / "summary.csv")
    demand = metrics.demand_nodes(net)
    hourly = result.pressure.reindex(columns=demand).round(1)
    run.files["pressure.csv"] = write_csv(hourly, out / "pressure.csv")  # for `watersupply map --results`
    report = baseline_report(title_zh=md.get("title_zh", md.get("name", "供水管网")) + " — 基准工况",
                             title_en=md.get("title_en", md.get("name", "Water network")) + " — baseline",
                             soundness=run.soundness, settlements=run.settlements, energy=run.pumps,
                             facts=network_facts(net), warnings=result.warnings, sanity=result.sanity,
                             quality=result.quality, cost=_cost_estimate(net), leakage=_leakage(net, result))
    run.files["report.md"] = write_text(report, out / "report.md")
    if run.audit is not None:
        from .audit import write_audit

        run.files.update(write_audit(run.audit, out, net=net, gpkg=False,
                                     title_zh=md.get("title_zh", md.get("name", "供水管网")),
                                     title_en=md.get("title_en", md.get("name", "Water network"))))
    if make_map:
        from .maps import bundled_district, render_service_map

        run.files["map.html"] = render_service_map(
            layers, out_html=out / "map.html", title=(md.get("title_zh", ""), md.get("title_en", md.get("name", ""))),
            pressure=result.pressure.reindex(columns=demand), tank_level=result.tank_level,
            district=bundled_district(md.get("name")), t=t)
    return run
