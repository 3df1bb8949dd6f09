"""Static PNG maps: Chinese labels with the mplfonts font, north arrow, scale bar, legend."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib.image import imread
from pyproj import CRS, Proj

from watersupply._errors import ConfigError, NetworkDataError
from watersupply.baseline import result_layers, run_baseline
from watersupply.maps import ScenarioOverlay, bundled_district, cjk_font, png_bytes, static_map, write_png
from watersupply.maps.fonts import CJK_FONT_FILE
from watersupply.maps.png import _nice_length, _north_angle

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def tiny_layers(tiny_net):
    return result_layers(run_baseline(tiny_net))


def _texts(fig):
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()] + [leg.get_title().get_text()]
    return out


def _legend(fig):
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_cjk_font_comes_from_mplfonts():
    family = cjk_font()
    assert family == "Noto Sans CJK SC"
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert path.endswith(CJK_FONT_FILE) and "mplfonts" in path


def test_tiny_png_renders_chinese_with_arrow_scale_and_legend(tiny_layers, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = static_map(tiny_layers, title=("小网供水", "tiny network"))
        path = write_png(fig, tmp_path / "map.png", dpi=80)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    assert missing == []  # every 汉字 found a glyph
    img = imread(path)
    assert img.shape[0] > 500 and img.shape[1] > 800
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50  # not blank
    texts = _texts(fig)
    assert "小网供水 tiny network" in texts and "村一 V1" in texts
    legend = _legend(fig)
    assert "主管网 Mains" in legend and "水池 Reservoir" in legend and "泵站 Pump station" in legend
    ax = fig.axes[0]
    gids = {a.get_gid() for a in ax.get_children()}
    assert {"north-arrow", "north-arrow-label", "scale-bar"} <= gids
    assert any(t.get_text() == "km" or t.get_text() == "m" for t in ax.texts)
    assert list(tmp_path.iterdir()) == [path]


def test_png_is_deterministic(tiny_layers):
    a = png_bytes(static_map(tiny_layers, title="t"), dpi=60)
    b = png_bytes(static_map(tiny_layers, title="t"), dpi=60)
    assert a == b and a[:8] == b"\x89PNG\r\n\x1a\n"


def test_english_map_has_no_chinese_labels(tiny_layers):
    fig = static_map(tiny_layers, lang="en")
    assert not [t for t in _legend(fig) if CJK.search(t)]
    assert "V1" in _texts(fig)
    fig = static_map(tiny_layers, lang="zh")
    assert "主管网" in _legend(fig) and "Mains" not in _legend(fig)


def test_colourings_verdicts_and_changes(tiny_layers):
    audit = pd.DataFrame({"id": ["V1", "C1"], "verdict": ["warn", "pass"]})
    diff = ScenarioOverlay(label="M4 closed", pipes=["M4"], settlements=pd.DataFrame(index=["C1"]))
    fig = static_map(tiny_layers, lang="en", pipe_colour_by="velocity", audit=audit, overlay=diff)
    legend = _legend(fig)
    assert "Villages & communities: verdict" in legend and "warn" in legend and "pass" in legend
    assert "Maximum velocity" in legend
    assert "Changes vs baseline: M4 closed" in legend
    with pytest.warns(UserWarning, match="criticality"):
        fig = static_map(tiny_layers, lang="en", pipe_colour_by="criticality")
    assert "Diameter (thick = mains)" in _legend(fig)


@pytest.mark.parametrize("kw, err, match", [
    ({"lang": "de"}, ConfigError, "lang must be one of"),
    ({"include": ["rivers"]}, ConfigError, "unknown map layer 'rivers'"),
    ({"pipe_colour_by": "age"}, ConfigError, "pipe_colour_by must be one of"),
    ({"include": ["district"]}, NetworkDataError, "'district' asked for but not in the data"),
])
def test_bad_options(tiny_layers, kw, err, match):
    with pytest.raises(err, match=match):
        static_map(tiny_layers, **kw)


def test_north_arrow_includes_grid_convergence(tiny_layers):
    fig = static_map(tiny_layers)
    ax = fig.axes[0]
    ang = np.degrees(_north_angle(ax, CRS("EPSG:4545")))
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(4545, 4326, always_xy=True).transform((x0 + x1) / 2, (y0 + y1) / 2)
    conv = Proj("EPSG:4545").get_factors(lon, lat).meridian_convergence
    assert 0.2 < abs(ang) < 2.0  # west of the zone's 108°E meridian true north is off grid north
    assert abs(abs(ang) - abs(conv)) < 0.02


def test_scale_bar_length_is_round():
    assert _nice_length(7_300) == 1000
    assert _nice_length(23_000) == 2000
    assert _nice_length(900) == 100
    assert _nice_length(3) == 1.0


@pytest.mark.slow
def test_tonghui_png(tonghui_baseline, tmp_path):
    layers = result_layers(tonghui_baseline)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = static_map(layers, title=("綦江区通惠街道城乡供水一体化工程", "Tonghui integrated water supply"),
                         district=bundled_district("tonghui"))
        path = write_png(fig, tmp_path / "tonghui.png")
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert path.stat().st_size < 3e6
    texts = _texts(fig)
    for name in ("柏林村 Bailin Village", "桥坝村 Qiaoba Village", "思南村 Sinan Village", "联惠社区 Lianhui Community"):
        assert name in texts


def test_schematic_network_has_scale_bar_but_no_north_arrow(tiny_layers):
    from watersupply.convert import SCHEMATIC_CRS

    local = {k: v.set_crs(SCHEMATIC_CRS, allow_override=True) for k, v in tiny_layers.items()}
    fig = static_map(local, lang="en")
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert "scale-bar" in gids and "north-arrow" not in gids
    assert any("not georeferenced" in t for t in _texts(fig))


def _label_boxes(fig):
    """Display boxes of the settlement names, measured in the map's CJK font (as they are drawn)."""
    from watersupply.maps.fonts import cjk_rc

    with cjk_rc():
        renderer = fig.canvas.get_renderer()
        return [t.get_window_extent(renderer) for t in fig.axes[0].texts if t.get_gid() == "settlement-label"]


def test_crowded_settlement_names_never_overlap(tmp_path):
    from test_webmap import crowded_settlements

    st = crowded_settlements()
    fig = static_map({"settlements": st}, lang="both", title="crowded")
    path = write_png(fig, tmp_path / "crowded.png", dpi=100)
    labels = [t for t in fig.axes[0].texts if t.get_gid() == "settlement-label"]
    boxes = _label_boxes(fig)
    assert 0 < len(labels) < len(st)
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    # the largest settlement is always named; the footnote says how many names were left out
    top = st.loc[st["population"].idxmax(), "id"]
    assert labels[0].get_text() == f"居民点{top}(推定) Settlement {top} (derived)"
    left_out = len(st) - len(labels)
    assert any(f"{left_out} settlement names left out" in t for t in _texts(fig))
    assert imread(path).shape[1] > 800
    # with room for every name (a large sheet), none is left out
    big = static_map({"settlements": st}, lang="en", figsize=(40, 30))
    assert sum(t.get_gid() == "settlement-label" for t in big.axes[0].texts) == len(st)
    assert not any("left out" in t for t in _texts(big))


@pytest.mark.slow
def test_ky4_derived_settlement_names_never_overlap(tmp_path):
    import warnings as w
    from pathlib import Path

    import wntr

    from watersupply.convert import read_inp

    with w.catch_warnings():
        w.simplefilter("ignore")
        net = read_inp(Path(wntr.library.__path__[0]) / "networks" / "ky4.inp")
    layers = {k: net[k] for k in ("nodes", "pipes", "facilities", "settlements")}
    fig = static_map(layers, title="ky4")
    write_png(fig, tmp_path / "ky4.png")
    boxes = _label_boxes(fig)
    assert len(net["settlements"]) >= 20 and len(boxes) >= 10
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
