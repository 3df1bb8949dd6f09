"""The criticality table, its GIS layer and files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import NetworkDataError
from ..schema import Network

__all__ = ["CONSEQUENCE_COLUMNS", "criticality_layer", "write_criticality"]

#: Consequence columns of the table, in order.
CONSEQUENCE_COLUMNS = [
    "people_without_water", "person_hours_without_water", "demand_not_served_m3",
    "settlements_affected", "settlements_zh", "settlements_en", "nodes_without_water",
    "worst_pressure_drop_m", "worst_drop_node",
]


def _table(plan: Any, closures: Mapping[str, tuple[str, ...]], answers: Mapping[str, dict[str, Any]],
           *, segments: bool) -> pd.DataFrame:
    net = plan.net
    pipes = net["pipes"].set_index(net["pipes"]["id"].astype(str))
    cls = pipes["class"].astype(str) if "class" in pipes else pd.Series("main", index=pipes.index)
    length = pd.to_numeric(pipes["length_m"], errors="coerce") if "length_m" in pipes else pipes.geometry.length
    st = net.get("settlements")
    names_zh, names_en = {}, {}
    if st is not None and len(st):
        for row in st.itertuples(index=False):
            names_zh[str(row.id)] = str(getattr(row, "name_zh", "") or "")
            names_en[str(row.id)] = str(getattr(row, "name_en", "") or "")
    rows = []
    for cid, links in closures.items():
        a = answers[cid]
        plinks = [x for x in links if x in pipes.index]
        rec: dict[str, Any] = dict(
            id=cid, kind="segment" if segments else "pipe",
            **{"class": ("main" if any(cls.get(x) == "main" for x in plinks) else "branch") if plinks else ""},
            length_m=float(length.reindex(plinks).sum()) if plinks else 0.0,
            n_links=len(links), links=";".join(links))
        dry = a.get("dry_idx")
        if a.get("status") == "error" or dry is None:
            rec.update(people_without_water=np.nan, person_hours_without_water=np.nan, demand_not_served_m3=np.nan,
                       settlements_affected="", settlements_zh="", settlements_en="", nodes_without_water=np.nan,
                       nodes_without_water_ids="", worst_pressure_drop_m=np.nan, worst_drop_node="")
        else:
            ids = [plan.demand_ids[i] for i in dry]
            sids = sorted({plan.settlement[i] for i in dry if plan.settlement[i]})
            rec.update(people_without_water=int(round(float(plan.pop[dry].sum()))),
                       person_hours_without_water=float(a["person_hours"]),
                       demand_not_served_m3=float(a["unserved_m3"]),
                       settlements_affected=";".join(sids),
                       settlements_zh="、".join(names_zh.get(s, s) for s in sids),
                       settlements_en="; ".join(names_en.get(s, s) for s in sids),
                       nodes_without_water=len(ids), nodes_without_water_ids=";".join(ids),
                       worst_pressure_drop_m=float(a.get("drop", np.nan)), worst_drop_node=a.get("drop_node", ""))
        rec.update(method=a.get("method", ""), status=a.get("status", "error"), message=a.get("message", ""))
        rows.append(rec)
    df = pd.DataFrame(rows)
    if not len(df):
        df = pd.DataFrame(columns=["id", "kind", "class", "length_m", "n_links", "links", *CONSEQUENCE_COLUMNS,
                                   "nodes_without_water_ids", "method", "status", "message"])
    df["people_without_water"] = df["people_without_water"].astype("Int64")
    df["nodes_without_water"] = df["nodes_without_water"].astype("Int64")
    # rank on keys rounded far below any meaningful difference, so that equal answers whose sums
    # differ in the last bits (summation order) tie and are ordered by id
    keys = pd.DataFrame({"p": df["people_without_water"], "h": df["person_hours_without_water"].round(6),
                         "m": df["demand_not_served_m3"].round(6), "id": df["id"]})
    order = keys.sort_values(["p", "h", "m", "id"], ascending=[False, False, False, True], na_position="last",
                             kind="mergesort").index
    df = df.loc[order]
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    df = df.set_index("id")
    cols = ["rank", "kind", "class", "length_m", *CONSEQUENCE_COLUMNS, "method", "status", "message", "n_links",
            "links", "nodes_without_water_ids"]
    return df[cols]



def criticality_layer(net: Network, table: pd.DataFrame) -> Any:
    """The pipes layer with the consequence columns (one row per pipe; segments repeat on their pipes).

    Returns a GeoDataFrame in the network's CRS, ordered by rank, with
    ``people_without_water`` for colouring and ``segment_id`` when the table is of segments.
    """
    import geopandas as gpd

    pipes = net["pipes"]
    if not isinstance(pipes, gpd.GeoDataFrame) or pipes.crs is None:
        raise NetworkDataError("layer 'pipes' needs geometry and a CRS to make the criticality layer")
    cols = ["rank", *CONSEQUENCE_COLUMNS, "method", "status", "message"]
    tab = table[cols].copy()
    tab["rank"] = tab["rank"].astype(int)
    if len(table) and (table["kind"] == "segment").any():
        rows = []
        for sid, links in table["links"].items():
            for lk in str(links).split(";"):
                rows.append((lk, sid))
        m = pd.DataFrame(rows, columns=["pipe", "segment_id"]).drop_duplicates("pipe")
        tab = m.merge(tab, left_on="segment_id", right_index=True).set_index("pipe")
    base = pipes[["id", "class", "diameter_mm", "geometry"]].copy() if "class" in pipes \
        else pipes[["id", "diameter_mm", "geometry"]].copy()
    base["id"] = base["id"].astype(str)
    out = base.merge(tab, left_on="id", right_index=True, how="inner")
    out = out.sort_values(["rank", "id"], kind="mergesort").reset_index(drop=True)
    for c in ("people_without_water", "nodes_without_water"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=pipes.crs)


def write_criticality(net: Network, table: pd.DataFrame, out_dir: str | os.PathLike, *,
                      make_map: bool = True, title: str = "") -> dict[str, Path]:
    """Write ``criticality.csv``, the ``criticality`` layer of ``results.gpkg`` and ``criticality_map.html``.

    An existing ``results.gpkg`` keeps its other layers (it is rewritten atomically with
    the ``criticality`` layer replaced). Every file goes through the atomic writers of
    :mod:`watersupply.io`.
    """
    import pyogrio

    from ..io import write_csv, write_layers

    out = Path(out_dir)
    files: dict[str, Path] = {}
    layer = criticality_layer(net, table)
    csv = table.drop(columns=["nodes_without_water_ids"]).copy()
    if not (csv["kind"] == "segment").any():
        csv = csv.drop(columns=["n_links", "links"])
    gpkg = out / "results.gpkg"
    layers: dict[str, Any] = {}
    if gpkg.is_file():
        try:
            for name, _geom in pyogrio.list_layers(gpkg):
                if str(name) != "criticality":
                    layers[str(name)] = pyogrio.read_dataframe(gpkg, layer=str(name))
        except Exception as exc:
            raise NetworkDataError(f"{gpkg}: exists but cannot be read ({exc}); move it away or choose another "
                                   "output folder with -o") from None
    layers["criticality"] = layer
    files["criticality.csv"] = write_csv(csv, out / "criticality.csv")
    files["results.gpkg"] = write_layers(layers, gpkg)
    if make_map:
        from ..maps import CriticalityOverlay, render_service_map

        map_layers: dict[str, Any] = {"pipes": layer}
        for name in ("settlements", "facilities"):
            if name in net and len(net[name]):
                map_layers[name] = net[name]
        people = layer.set_index("id")["people_without_water"]
        files["criticality_map.html"] = render_service_map(map_layers, out_html=out / "criticality_map.html",
                                                           title=title, overlay=CriticalityOverlay(people=people))
    return files
