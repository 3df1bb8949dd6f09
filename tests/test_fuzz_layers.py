"""Fuzzed GIS layers: every mutation gives a valid result or the project's own error, never a crash.

Hypothesis with a fixed seed (profiles in conftest.py): 500 cases by default, 5,000 with
``pytest --fuzz-long``. Mutations: missing/extra/renamed columns, wrong types, NaN/inf and
negative numbers, empty/invalid/wrong-type geometries, duplicate ids, mixed or missing CRS,
self-intersecting polygons, Chinese/emoji/HTML names, huge coordinates, dropped or empty layers,
references to missing nodes.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon

from watersupply._errors import WatersupplyError
from watersupply.baseline import run_baseline
from watersupply.schema import validate_network

LAYERS = ("nodes", "pipes", "pumps", "facilities", "settlements")
NAMES = st.sampled_from(["联惠社区", "村四(待核实)", "💧🚰", "<img src=x onerror=alert(1)>", "", " ", "a" * 300,
                         "Ω≈ç√", "NULL", "0", "-1", "nan"])


def _mutate(net: dict, data: st.DataObject) -> dict:
    net = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in net.items()}
    layer = data.draw(st.sampled_from([k for k in LAYERS if k in net]), label="layer")
    df = net[layer]
    kind = data.draw(st.sampled_from([
        "drop_column", "rename_column", "extra_column", "wrong_type", "nan", "negative", "empty_geometry",
        "invalid_geometry", "duplicate_id", "mixed_crs", "names", "huge_coordinates", "drop_layer", "empty_layer",
        "bad_reference", "no_crs", "wrong_geometry_type",
    ]), label="mutation")
    cols = [c for c in df.columns if c != df.geometry.name] if isinstance(df, gpd.GeoDataFrame) else list(df.columns)
    n = len(df)
    row = data.draw(st.integers(0, max(n - 1, 0)), label="row") if n else 0
    if kind == "drop_column" and cols:
        df = df.drop(columns=[data.draw(st.sampled_from(cols), label="column")])
    elif kind == "rename_column" and cols:
        col = data.draw(st.sampled_from(cols), label="column")
        df = df.rename(columns={col: data.draw(st.sampled_from(["ID", "Diameter", "elev", "名称", col + "_x"]))})
    elif kind == "extra_column":
        df[data.draw(st.sampled_from(["extra", "备注", "🙂"]))] = data.draw(st.sampled_from([1, "x", None, 1e300]))
    elif kind == "wrong_type" and cols and n:
        col = data.draw(st.sampled_from(cols), label="column")
        df[col] = df[col].astype(object)
        df.iloc[row, df.columns.get_loc(col)] = data.draw(st.sampled_from(["abc", "", None, True, -1, 1e308, "1e3"]))
    elif kind == "nan" and n:
        num = [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]
        if num:
            col = data.draw(st.sampled_from(num), label="column")
            df[col] = df[col].astype(float)
            df.iloc[row, df.columns.get_loc(col)] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "negative" and n:
        num = [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]
        if num:
            col = data.draw(st.sampled_from(num), label="column")
            df[col] = df[col].astype(float)
            df.iloc[row, df.columns.get_loc(col)] = data.draw(st.sampled_from([-1.0, 0.0, -1e6, 1e9]))
    elif kind == "empty_geometry" and n:
        geoms = df.geometry.copy()
        geoms.iloc[row] = data.draw(st.sampled_from([None, Point(), LineString(), Polygon()]))
        df = df.set_geometry(geoms)
    elif kind == "invalid_geometry" and n:
        g = df.geometry.iloc[row]
        if g is not None and not g.is_empty:
            x, y = g.centroid.x, g.centroid.y
            bowtie = Polygon([(x, y), (x + 100, y + 100), (x + 100, y), (x, y + 100)])
            geoms = df.geometry.copy()
            geoms.iloc[row] = bowtie if layer == "settlements" else LineString([(x, y), (x, y)])
            df = df.set_geometry(geoms)
    elif kind == "duplicate_id" and n >= 2 and "id" in df:
        df.iloc[(row + 1) % n, df.columns.get_loc("id")] = df["id"].iloc[row]
    elif kind == "mixed_crs" and isinstance(df, gpd.GeoDataFrame) and df.crs is not None:
        df = df.to_crs(data.draw(st.sampled_from(["EPSG:4326", "EPSG:32648", "EPSG:3857"])))
    elif kind == "names" and n:
        col = data.draw(st.sampled_from([c for c in ("name_zh", "name_en", "id") if c in df] or cols))
        df[col] = df[col].astype(object)
        df.iloc[row, df.columns.get_loc(col)] = data.draw(NAMES)
    elif kind == "huge_coordinates" and isinstance(df, gpd.GeoDataFrame):
        df = df.set_geometry(df.geometry.translate(xoff=data.draw(st.sampled_from([1e9, -1e12, 1e15]))))
    elif kind == "drop_layer":
        net.pop(layer)
        return net
    elif kind == "empty_layer":
        df = df.iloc[0:0]
    elif kind == "bad_reference" and n:
        ref = [c for c in ("from_node", "to_node", "node_id", "settlement_id", "control_node") if c in df]
        if ref:
            col = data.draw(st.sampled_from(ref))
            df[col] = df[col].astype(object)
            df.iloc[row, df.columns.get_loc(col)] = data.draw(st.sampled_from(["NOPE", "", None, "J1 "]))
    elif kind == "no_crs" and isinstance(df, gpd.GeoDataFrame):
        df = df.set_crs(None, allow_override=True)
    elif kind == "wrong_geometry_type" and isinstance(df, gpd.GeoDataFrame) and n:
        df = df.set_geometry(df.geometry.buffer(1.0) if layer != "settlements" else df.geometry.centroid)
    net[layer] = df
    return net


@given(data=st.data())
def test_fuzzed_layers_give_result_or_own_error(tiny_net, data):
    net = tiny_net
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        net = _mutate(net, data)
    try:
        validate_network(net, source="fuzzed")
        run = run_baseline(net, duration_h=2, age=False)
    except WatersupplyError as exc:
        msg = str(exc)
        assert msg and "Traceback" not in msg
        return
    assert len(run.nodes) > 0
    assert not np.isinf(run.soundness["figure"].astype(float)).any()
