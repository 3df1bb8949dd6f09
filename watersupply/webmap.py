"""Interactive service maps for officials: one self-contained, offline HTML file per run.

:func:`service_map` turns a run's GIS layers (nodes, pipes, facilities,
settlements, with their summary results as columns) into a Leaflet map built
with folium; :func:`write_map` writes it atomically. The map shows

- villages and communities coloured by the audit verdict (pass/warn/fail) when
  one exists, otherwise by their service level against the service head;
- mains and branches, coloured by diameter (width by class), or — switchable in
  the map — by minimum pressure, maximum velocity or criticality when the pipes
  carry those columns;
- the plant, pump stations and reservoirs with distinct inline-SVG icons;
- demand nodes by minimum pressure, with a time slider that recolours them hour
  by hour from the simulated pressures;
- for a scenario, what changed against the baseline (:func:`scenario_diff`);
- optionally the district outline, converted from GCJ-02 to WGS84.

The file works offline: Leaflet 1.9.4 is inlined from the installed
``django-js-lib-leaflet`` package, folium's CDN resources are dropped and no
image is used (circle markers and inline SVG only). Basemap tiles are off by
default. Chinese text does not depend on the viewer's fonts: Noto Sans CJK SC
(from ``mplfonts``), subset to exactly the characters on the page, is embedded
as a ``data:`` URL ``@font-face`` (:func:`font_face_css`). All user data is
embedded once as JSON (with ``<`` ``>`` ``&`` escaped) and put on the page
with ``textContent`` only, so names such as ``<img src=x onerror=...>`` show
as text.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement

from ._errors import ConfigError, NetworkDataError, closest
from .io import NETWORKS_DIR, write_text
from .standards import thresholds

__all__ = [
    "LANGS",
    "MAP_LAYERS",
    "PIPE_COLOURINGS",
    "TILES",
    "service_map",
    "map_html",
    "write_map",
    "external_references",
    "is_georeferenced",
    "scenario_diff",
    "settlement_status",
    "gcj02_to_wgs84",
    "wgs84_to_gcj02",
    "read_district",
    "bundled_district",
    "leaflet_assets",
    "page_characters",
    "font_face_css",
    "WEB_FONT_FAMILY",
    "FONT_STACK",
    "text",
]

log = logging.getLogger(__name__)

WEB_CRS = "EPSG:4326"
#: Languages of labels, legends and popups.
LANGS = ("zh", "en", "both")
#: Layers a map can show (``include``); ``pipes`` gives two overlays, mains and branches.
MAP_LAYERS = ("settlements", "pipes", "facilities", "nodes", "district")
#: Pipe colourings: by diameter and class, or by a result column.
PIPE_COLOURINGS = ("class", "min_pressure", "velocity", "criticality")
#: Basemaps: none (offline), OpenStreetMap, Tianditu (天地图, needs a key).
TILES = ("none", "osm", "tianditu")
#: Columns holding a pipe's criticality (people affected when it fails), first found is used.
CRITICALITY_COLUMNS = ("criticality_people", "people_affected", "people_without_water", "criticality")
TIANDITU_KEY_PLACEHOLDER = "YOUR_TIANDITU_KEY"
#: Schematic drawings (a local CRS, not georeferenced) are placed at 0°N 0°E by this
#: transverse Mercator so that Leaflet's scale bar stays true (scale factor 1 there).
SCHEMATIC_WEB_CRS = "+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
COORD_DIGITS = 5  # 1e-5 degree ≈ 1 m

# --------------------------------------------------------------------------- text

_TEXT: dict[str, tuple[str, str]] = {
    "settlements": ("村与社区", "Villages & communities"),
    "mains": ("主管网", "Mains"),
    "branches": ("支管网", "Branches"),
    "facilities": ("水厂·泵站·水池", "Plant, pump stations, reservoirs"),
    "nodes": ("用水节点压力", "Demand-node pressure"),
    "district": ("区县界(GCJ-02转WGS84)", "District (GCJ-02→WGS84)"),
    "changes": ("与基准工况相比的变化", "Changes vs baseline"),
    "plant": ("水厂", "Water plant"),
    "pump_station": ("泵站", "Pump station"),
    "reservoir": ("水池", "Reservoir"),
    "village": ("村", "village"),
    "community": ("社区", "community"),
    "id": ("编号", "ID"),
    "kind": ("类型", "Type"),
    "population": ("人口", "Population"),
    "min_pressure": ("最低压力", "Minimum pressure"),
    "mean_pressure": ("平均压力", "Mean pressure"),
    "service_head": ("服务水头", "Service head"),
    "compliance": ("压力达标率", "Pressure compliance"),
    "served": ("供水满足率", "Demand served"),
    "min_chlorine": ("最低余氯", "Minimum free chlorine"),
    "max_age": ("最大水龄", "Maximum water age"),
    "verdict": ("评定", "Verdict"),
    "reason": ("原因", "Reason"),
    "fixes": ("建议措施", "Suggested fixes"),
    "score": ("得分", "Score"),
    "dim_network": ("同网", "Same network"),
    "dim_quality": ("同质", "Same quality"),
    "dim_pressure": ("服务压力", "Service pressure"),
    "dim_price": ("同价", "Same price"),
    "service_level": ("服务水平", "Service level"),
    "people_without_water": ("无水人口(最多时)", "People without water (peak)"),
    "people_hours": ("无水人·时", "Person-hours without water"),
    "min_pressure_change": ("最低压力变化", "Change in minimum pressure"),
    "change": ("变化", "Change"),
    "class": ("类别", "Class"),
    "main": ("主管", "main"),
    "branch": ("支管", "branch"),
    "diameter": ("管径", "Diameter"),
    "material": ("管材", "Material"),
    "length": ("长度", "Length"),
    "max_velocity": ("最大流速", "Maximum velocity"),
    "mean_flow": ("平均流量", "Mean flow"),
    "criticality": ("关键性(受影响人口)", "Criticality (people affected)"),
    "settlement": ("所属村/社区", "Settlement"),
    "elevation": ("地面高程", "Ground elevation"),
    "pressure_now": ("所选时刻压力", "Pressure at the selected hour"),
    "head": ("水头", "Head"),
    "capacity": ("规模", "Capacity"),
    "design_flow": ("设计流量", "Design flow"),
    "design_head": ("设计扬程", "Design head"),
    "fills": ("供水至", "Fills"),
    "bottom_elev": ("池底高程", "Bottom elevation"),
    "level_range": ("水位范围(最低–最高)", "Level range (min–max)"),
    "volume": ("容积", "Volume"),
    "sim_level": ("模拟水位(最低–最高)", "Simulated level (min–max)"),
    "energy": ("运行期能耗", "Energy over the run"),
    "time": ("时间", "Time"),
    "hour": ("第{h}小时", "hour {h}"),
    "min_over_run": ("全时段最低压力", "Minimum over the run"),
    "min_btn": ("最低", "Min"),
    "play": ("播放", "Play"),
    "pipe_colour": ("管线着色", "Pipe colouring"),
    "by_class": ("管径(粗线为主管)", "Diameter (thick = mains)"),
    "by_min_pressure": ("最低压力", "Minimum pressure"),
    "by_velocity": ("最大流速", "Maximum velocity"),
    "by_criticality": ("关键性(受影响人口)", "Criticality (people affected)"),
    "legend": ("图例", "Legend"),
    "no_data": ("无数据", "no data"),
    "pass": ("达标", "pass"),
    "warn": ("需关注", "warn"),
    "fail": ("不达标", "fail"),
    "meets": ("全时段满足服务水头", "service head met at all hours"),
    "mostly": ("≥{p}时段满足", "met in ≥ {p} of hours"),
    "below": ("低于服务水头", "below service head"),
    "no_water": ("部分时段无水", "without water at times"),
    "settlement_verdict": ("村与社区:评定", "Villages & communities: verdict"),
    "settlement_service": ("村与社区:服务水平", "Villages & communities: service level"),
    "p_no_water": ("无水 (<{a} m)", "no water (< {a} m)"),
    "p_band": ("{a}–{b} m", "{a}–{b} m"),
    "p_top": ("≥ {a} m", "≥ {a} m"),
    "v_stagnant": ("< {a} m/s 滞流", "< {a} m/s stagnant"),
    "v_low": ("{a}–{b} m/s 偏低", "{a}–{b} m/s low"),
    "v_econ": ("{a}–{b} m/s 经济流速", "{a}–{b} m/s economic"),
    "v_high": ("{a}–{b} m/s 偏高", "{a}–{b} m/s high"),
    "v_over": ("> {a} m/s 超限", "> {a} m/s over limit"),
    "dn_below": ("DN < {a}", "DN < {a}"),
    "dn_band": ("DN {a}–{b}", "DN {a}–{b}"),
    "dn_top": ("DN ≥ {a}", "DN ≥ {a}"),
    "people_none": ("0 人", "0 people"),
    "people_band": ("{a}–{b} 人", "{a}–{b} people"),
    "people_top": ("≥ {a} 人", "≥ {a} people"),
    "changed_pipe": ("变化的管段", "changed pipe"),
    "affected_settlement": ("受影响的村/社区", "affected settlement"),
    "basemap_none": ("无底图(离线)", "No basemap (offline)"),
    "osm": ("OpenStreetMap 底图", "OpenStreetMap"),
    "tianditu": ("天地图", "Tianditu"),
    "note_crs": ("坐标: WGS84 (EPSG:4326)", "Coordinates: WGS84 (EPSG:4326)"),
    "note_offline": ("本图离线可用, 不加载任何网络资源", "This map works offline and loads nothing from the network"),
    "note_district": ("区界原为GCJ-02(高德)坐标, 已迭代反算为WGS84(误差约1 m)",
                      "District outline converted from GCJ-02 (AMap) to WGS84 by iterative inversion (≈1 m)"),
    "note_gcj": ("高德/AMap 瓦片为GCJ-02加偏坐标(偏移数百米), 不可与本图直接叠加",
                 "Gaode/AMap tiles are GCJ-02-offset (by a few hundred metres); do not overlay them on this map"),
    "note_tianditu_key": ("天地图需要密钥: 请用 tianditu_key / --tianditu-key 提供",
                          "Tianditu needs a key: give it with tianditu_key / --tianditu-key"),
    "note_slider": ("滑块逐时显示节点压力", "Use the slider to step through node pressure hour by hour"),
    "notes": ("说明", "Notes"),
    "note_schematic": ("示意图: 坐标未地理配准(局部坐标, 米)", "Schematic drawing: local coordinates in metres, not georeferenced"),
    "coordinates": ("坐标", "Coordinates"),
    "north": ("北", "N"),
}


def text(key: str, lang: str = "both", **fmt: Any) -> str:
    """A label in the requested language (``both``: Chinese then English).

    Examples
    --------
    >>> text("mains", "zh"), text("mains", "en"), text("mains")
    ('主管网', 'Mains', '主管网 Mains')
    """
    zh, en = _TEXT[key]
    zh, en = zh.format(**fmt), en.format(**fmt)
    if lang == "zh":
        return zh
    if lang == "en":
        return en
    return zh if zh == en else f"{zh} {en}"


def _check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ConfigError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


# --------------------------------------------------------------------------- GCJ-02

_GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_GCJ_EE = 0.00669342162296594323


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + common
            + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + common
            + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * pi
    magic = 1.0 - _GCJ_EE * np.sin(rad) ** 2
    sq = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sq) * pi)
    dlon = dlon * 180.0 / (_GCJ_A / sq * np.cos(rad) * pi)
    return dlon, dlat


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Forward GCJ-02 ("Mars") obfuscation of WGS84 longitudes/latitudes (degrees).

    Points outside China are returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(121.5272106, 31.1774276)
    >>> round(float(lon), 9), round(float(lat), 9)
    (121.531541859, 31.175303984)
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _gcj_delta(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = 1e-10, max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Invert GCJ-02 to WGS84 by fixed-point iteration (accurate to well under 1 m).

    Starts from ``gcj - delta(gcj)`` and repeats ``wgs -= forward(wgs) - gcj``
    until the largest correction is below `tol_deg`.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(121.531541859215, 31.17530398364597)
    >>> round(float(lon), 7), round(float(lat), 7)
    (121.5272106, 31.1774276)
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    dlon, dlat = _gcj_delta(glon, glat)
    wlon, wlat = glon - dlon, glat - dlat
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon, wlat = wlon - elon, wlat - elat
        if max(float(np.max(np.abs(elon), initial=0.0)), float(np.max(np.abs(elat), initial=0.0))) < tol_deg:
            break
    inside = _in_china(glon, glat)
    return np.where(inside, wlon, glon), np.where(inside, wlat, glat)


def read_district(path: str | os.PathLike, *, gcj02: bool = True) -> gpd.GeoDataFrame:
    """Read a district outline (GeoJSON geometry, Feature or FeatureCollection) in WGS84.

    Parameters
    ----------
    path
        The GeoJSON file.
    gcj02
        The coordinates are GCJ-02 (AMap/Gaode) and are converted to WGS84.

    Raises
    ------
    NetworkDataError
        The file is missing or not GeoJSON with (multi)polygons.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NetworkDataError(f"{p}: district outline not found; give a GeoJSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NetworkDataError(f"{p}: not valid GeoJSON ({exc}); give a GeoJSON polygon file") from None
    feats = raw.get("features") if raw.get("type") == "FeatureCollection" else [raw]
    geoms, props = [], []
    for f in feats:
        g = f.get("geometry", f) if f.get("type") == "Feature" else f
        try:
            geom = shapely.geometry.shape(g)
        except Exception as exc:  # shapely raises several types on bad input
            raise NetworkDataError(f"{p}: a geometry cannot be read ({exc}); give (Multi)Polygon GeoJSON") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise NetworkDataError(f"{p}: geometry type {geom.geom_type!r}; a district outline must be (Multi)Polygon")
        if gcj02:
            geom = shapely.transform(geom, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
        geoms.append(geom)
        props.append({k: v for k, v in (f.get("properties") or {}).items()})
    return gpd.GeoDataFrame(props, geometry=geoms, crs=WEB_CRS)


def bundled_district(name: str | None) -> gpd.GeoDataFrame | None:
    """The district outline bundled with network `name` (``networks/<name>/*_gcj02.geojson``), or None."""
    if not name or not re.fullmatch(r"[\w-]+", str(name)):
        return None
    folder = NETWORKS_DIR / str(name)
    files = sorted(folder.glob("*_gcj02.geojson")) if folder.is_dir() else []
    return read_district(files[0], gcj02=True) if files else None


# --------------------------------------------------------------------------- Leaflet

_LEAFLET_PKG = "js_lib_leaflet"


@functools.lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """Leaflet 1.9.4 JavaScript and CSS from the installed ``django-js-lib-leaflet`` package.

    The CSS's images are inlined as ``data:`` URIs (layer-control icon) or
    removed (default marker icons, unused), and source-map comments are
    dropped, so nothing is fetched.

    Raises
    ------
    ImportError
        The package is not installed (``pip install django-js-lib-leaflet``).
    """
    try:
        root = resources.files(_LEAFLET_PKG) / "static" / "js_lib_leaflet"
        js = (root / "leaflet.js").read_text(encoding="utf-8")
        css = (root / "leaflet.css").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ImportError("offline maps inline Leaflet from the django-js-lib-leaflet package: "
                          f"pip install 'django-js-lib-leaflet>=1.9.4' ({exc})") from None
    if "Leaflet 1.9" not in js[:400]:
        log.warning("django-js-lib-leaflet does not ship Leaflet 1.9.x; the map may not work")
    js = re.sub(r"//# sourceMappingURL=\S+", "", js)

    def _image(match: re.Match[str]) -> str:
        fname = match.group(1)
        if fname.startswith("layers"):
            data = (root / "images" / fname).read_bytes()
            return "url(data:image/png;base64," + base64.b64encode(data).decode("ascii") + ")"
        return "none"

    css = re.sub(r"url\(\s*['\"]?images/([\w.-]+)['\"]?\s*\)", _image, css)
    css = re.sub(r"/\*# sourceMappingURL=\S+ \*/", "", css)
    for s in (js, css):
        if re.search(r"</(script|style)", s, flags=re.I):
            raise RuntimeError("the Leaflet files contain a closing script/style tag; cannot inline them")
    return js, css


def external_references(page: str) -> list[str]:
    """URLs an HTML page would fetch by itself: ``src``/``href`` attributes and CSS ``url()``.

    Tile URL templates inside scripts are not listed (they are only used when
    a basemap was asked for). ``data:`` URIs and in-page anchors are ignored.
    """
    found = re.findall(r"""<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""",
                       page, flags=re.I)
    found += re.findall(r"""url\(\s*["']?([^"')\s]+)""", page)
    found += re.findall(r"""@import\s+["']([^"']+)""", page)
    return sorted({u for u in found if not u.startswith(("data:", "#"))})


# --------------------------------------------------------------------------- web font

#: CSS family of the Chinese font embedded in every map: a subset of Noto Sans CJK SC
#: (SIL Open Font License 1.1) from the ``mplfonts`` package, so that 汉字 do not depend
#: on the viewer's system fonts.
WEB_FONT_FAMILY = "WS Noto Sans CJK SC"
#: Font stack of all text on the map: the embedded font first, then system fonts.
FONT_STACK = (f'"{WEB_FONT_FAMILY}","Helvetica Neue",Arial,"Noto Sans CJK SC","Source Han Sans SC",'
              '"Microsoft YaHei","PingFang SC",sans-serif')
# OpenType features kept for horizontal text; other-locale (locl) and vertical forms are dropped.
_FONT_FEATURES = ("calt", "ccmp", "kern", "liga", "mark", "mkmk", "rlig")
# name table records kept: family and style names, copyright (0) and the OFL licence (13, 14)
_FONT_NAME_IDS = (0, 1, 2, 3, 4, 5, 6, 13, 14)
_FONT_SLOT = '<style id="ws-font"></style>'  # filled by map_html; user text can never contain "<"
_PRINTABLE_ASCII = frozenset(map(chr, range(0x20, 0x7F)))


def page_characters(page: str) -> str:
    r"""Every character a page can show, sorted and without repeats.

    The literal text, the ``\uXXXX`` escapes (JSON data, scripts) and HTML
    entities, plus printable ASCII; control characters and lone surrogates
    are left out.

    Examples
    --------
    >>> page_characters('<b>主管</b> "\\u2013" &#215;')[-5:]
    '~×–主管'
    """
    decoded = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    chars = set(page) | set(html.unescape(decoded)) | _PRINTABLE_ASCII
    return "".join(sorted(c for c in chars
                          if c >= " " and not "\x7f" <= c <= "\x9f" and not "\ud800" <= c <= "\udfff"))


def _woff2_available() -> bool:
    try:
        import brotli  # noqa: F401  (fontTools compresses WOFF2 with it)
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=16)
def font_face_css(chars: str) -> str:
    """A CSS ``@font-face`` rule embedding Noto Sans CJK SC, subset to `chars`, as a ``data:`` URL.

    The font file is found with :func:`watersupply.staticmap.cjk_font_file`
    and subset with ``fontTools.subset`` (hinting and vertical/locale forms
    dropped), compressed as WOFF2 when ``brotli`` is installed, else WOFF
    (zlib). The result depends only on `chars` and the installed font and
    fontTools, so pages stay byte-identical between runs. Characters the
    font lacks fall back to the next fonts of :data:`FONT_STACK`.

    Returns
    -------
    str
        The rule for family :data:`WEB_FONT_FAMILY`, or ``""`` (with a
        warning) when ``mplfonts`` is not installed.

    Examples
    --------
    >>> css = font_face_css("联惠社区 Lianhui 0123")
    >>> css.startswith('@font-face{font-family:"WS Noto Sans CJK SC"') and ";base64," in css
    True
    """
    from fontTools import subset

    from .staticmap import cjk_font_file

    try:
        source = cjk_font_file()
    except ImportError as exc:
        warnings.warn(f"{exc}; the map relies on the viewer's fonts for Chinese text", stacklevel=3)
        return ""
    opts = subset.Options()
    opts.flavor = "woff2" if _woff2_available() else "woff"
    opts.layout_features = list(_FONT_FEATURES)
    opts.name_IDs = list(_FONT_NAME_IDS)
    opts.hinting = False
    opts.desubroutinize = True
    opts.recalc_timestamp = False
    font = subset.load_font(str(source), opts, dontLoadGlyphNames=True)
    try:
        sub = subset.Subsetter(opts)
        sub.populate(text="".join(sorted(set(chars))))
        sub.subset(font)
        buf = io.BytesIO()
        subset.save_font(font, buf, opts)
        log.debug("embedded font: %d characters, %d glyphs, %d bytes %s", len(set(chars)),
                  len(font.getGlyphOrder()), buf.tell(), opts.flavor)
    finally:
        font.close()
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'@font-face{{font-family:"{WEB_FONT_FAMILY}";font-style:normal;font-weight:400;font-display:block;'
            f'src:url(data:font/{opts.flavor};base64,{data}) format("{opts.flavor}")}}')


# --------------------------------------------------------------------------- classes

_PRESSURE_COLOURS = ("#67000d", "#d7301f", "#fc8d59", "#fee08b", "#66bd63", "#2166ac")
_NODATA = "#bdbdbd"
_VERDICT_COLOURS = {"pass": "#1a9850", "warn": "#fdae61", "fail": "#d73027"}
_SERVICE_COLOURS = {"meets": "#1a9850", "mostly": "#a6d96a", "below": "#fdae61", "no_water": "#d73027"}
_DN_BREAKS = (100.0, 150.0, 250.0, 400.0)
_DN_COLOURS = ("#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b")
_VELOCITY_COLOURS = ("#bcbddc", "#74add1", "#1a9850", "#fdae61", "#d73027")
_PEOPLE_BREAKS = (1.0, 100.0, 1000.0, 5000.0)
_PEOPLE_COLOURS = ("#d9d9d9", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
_CHANGE_COLOUR = "#c51b8a"
FACILITY_COLOURS = {"plant": "#08306b", "pump_station": "#e6550d", "reservoir": "#3182bd"}

#: Inline SVG icons of the facilities (constants; no user data).
FACILITY_ICONS = {
    "plant": ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">'
              '<rect x="1.5" y="1.5" width="21" height="21" rx="3" fill="#08306b" stroke="#fff" stroke-width="1.5"/>'
              '<path d="M12 4.5C9.5 9 7 11.2 7 14.3a5 5 0 0 0 10 0C17 11.2 14.5 9 12 4.5z" fill="#9ecae1"/></svg>'),
    "pump_station": ('<svg xmlns="http://www.w3.org/2000/svg" width="22" height="22" viewBox="0 0 22 22">'
                     '<circle cx="11" cy="11" r="9.5" fill="#e6550d" stroke="#fff" stroke-width="1.5"/>'
                     '<path d="M6.5 15.5L11 5.5l4.5 10z" fill="#fff"/></svg>'),
    "reservoir": ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="22" viewBox="0 0 24 22">'
                  '<path d="M2 5v12c0 2.2 4.5 4 10 4s10-1.8 10-4V5" fill="#3182bd" stroke="#fff" stroke-width="1.5"/>'
                  '<ellipse cx="12" cy="5" rx="10" ry="3.8" fill="#6baed6" stroke="#fff" stroke-width="1.5"/>'
                  '<path d="M4 12c2.5 1.2 5 1.2 8 0s5.5-1.2 8 0" fill="none" stroke="#deebf7" stroke-width="1.4"/></svg>'),
}


def _fmt_num(v: float) -> str:
    return f"{v:g}"


def _band_legend(title: str, breaks: Iterable[float], colours: Iterable[str], labels: Iterable[str],
                 *, shape: str, nodata: bool = True, lang: str = "both") -> dict[str, Any]:
    items = [[c, lab] for c, lab in zip(colours, labels)]
    if nodata:
        items.append([_NODATA, text("no_data", lang)])
    return {"title": title, "breaks": [float(b) for b in breaks], "items": items, "shape": shape}


def pressure_legend(t: Mapping[str, float] | None = None, *, lang: str = "both", shape: str = "circle",
                    title: str | None = None) -> dict[str, Any]:
    """Pressure classes (m) from the standards: no water, below 1-storey head, below network-end head, …"""
    t = t or thresholds()
    b = [t["pdd_minimum_pressure_m"], t["urban_head_1_storey_m"], t["network_end_head_m"],
         t["urban_planning_target_m"], t["rural_max_static_head_m"]]
    labels = [text("p_no_water", lang, a=_fmt_num(b[0]))]
    labels += [text("p_band", lang, a=_fmt_num(lo), b=_fmt_num(hi)) for lo, hi in zip(b[:-1], b[1:])]
    labels.append(text("p_top", lang, a=_fmt_num(b[-1])))
    return _band_legend(title or text("min_pressure", lang), b, _PRESSURE_COLOURS, labels, shape=shape, lang=lang)


def _velocity_legend(t: Mapping[str, float], lang: str) -> dict[str, Any]:
    b = [0.1, t["main_velocity_economic_min_ms"], t["main_velocity_economic_max_ms"], t["main_velocity_max_ms"]]
    f = [_fmt_num(x) for x in b]
    labels = [text("v_stagnant", lang, a=f[0]), text("v_low", lang, a=f[0], b=f[1]),
              text("v_econ", lang, a=f[1], b=f[2]), text("v_high", lang, a=f[2], b=f[3]),
              text("v_over", lang, a=f[3])]
    return _band_legend(text("by_velocity", lang), b, _VELOCITY_COLOURS, labels, shape="line", lang=lang)


def _dn_legend(lang: str) -> dict[str, Any]:
    b = [int(x) for x in _DN_BREAKS]
    labels = [text("dn_below", lang, a=b[0])]
    labels += [text("dn_band", lang, a=lo, b=hi - 1) for lo, hi in zip(b[:-1], b[1:])]
    labels.append(text("dn_top", lang, a=b[-1]))
    return _band_legend(text("by_class", lang), _DN_BREAKS, _DN_COLOURS, labels, shape="line", lang=lang)


def _people_legend(lang: str) -> dict[str, Any]:
    b = [int(x) for x in _PEOPLE_BREAKS]
    labels = [text("people_none", lang)]
    labels += [text("people_band", lang, a=f"{lo:,}", b=f"{hi - 1:,}") for lo, hi in zip(b[:-1], b[1:])]
    labels.append(text("people_top", lang, a=f"{b[-1]:,}"))
    return _band_legend(text("by_criticality", lang), _PEOPLE_BREAKS, _PEOPLE_COLOURS, labels, shape="line", lang=lang)


def classify(values: Iterable[float], legend: Mapping[str, Any]) -> np.ndarray:
    """Index of each value's class in ``legend["items"]`` (NaN → the trailing no-data item)."""
    v = np.asarray(list(values) if not isinstance(values, (np.ndarray, pd.Series)) else values, dtype=float)
    idx = np.searchsorted(np.asarray(legend["breaks"], dtype=float), v, side="right")
    return np.where(np.isnan(v), len(legend["items"]) - 1, idx).astype(int)


def _audit_verdicts(settlements: pd.DataFrame, audit: pd.DataFrame | None) -> pd.Series | None:
    """Verdicts by settlement id from `audit` (or the layer's ``verdict`` column), validated."""
    ids = settlements["id"].astype(str)
    if audit is not None:
        if not isinstance(audit, pd.DataFrame) or "verdict" not in audit.columns:
            raise ConfigError("audit must be a DataFrame with a 'verdict' column indexed by settlement id "
                              f"(or with an 'id'/'settlement_id' column), got {type(audit).__name__}"
                              + (f" with columns {list(map(str, audit.columns))}" if isinstance(audit, pd.DataFrame) else ""))
        a = audit
        for key in ("id", "settlement_id"):
            if key in a.columns:
                a = a.set_index(key)
                break
        a_ids = a.index.astype(str)
        unknown = sorted(set(a_ids) - set(ids))
        if unknown:
            raise NetworkDataError(f"audit: settlement id(s) {', '.join(map(repr, unknown[:5]))} are not in the "
                                   f"settlements layer; {closest(unknown[0], ids)}")
        verdict = pd.Series(a["verdict"].to_numpy(), index=a_ids).reindex(ids)
    elif "verdict" in settlements.columns:
        verdict = pd.Series(settlements["verdict"].to_numpy(), index=ids)
    else:
        return None
    norm = verdict.map(lambda v: str(v).strip().lower() if v is not None and not pd.isna(v) else None)
    bad = norm[norm.notna() & ~norm.isin(list(_VERDICT_COLOURS))]
    if len(bad):
        raise ConfigError(f"audit verdict of settlement {bad.index[0]!r} is {verdict[bad.index[0]]!r}; "
                          f"use one of {', '.join(_VERDICT_COLOURS)}")
    return norm


def settlement_status(settlements: pd.DataFrame, *, audit: pd.DataFrame | None = None,
                      t: Mapping[str, float] | None = None, lang: str = "both") -> tuple[pd.Series, dict[str, Any]]:
    """Each settlement's class for colouring, and the legend.

    By the audit verdict (pass/warn/fail) when `audit` is given or the layer has
    a ``verdict`` column; otherwise by service level: without water at times
    (minimum pressure below the PDD minimum), below the service head (pressure
    compliance below the CJ/T 316 rate), met in most hours, met at all hours.

    Returns
    -------
    status : Series
        Class key per settlement id (``pass``/``warn``/``fail`` or
        ``meets``/``mostly``/``below``/``no_water``; ``no_data``).
    legend : dict
        Title and ``items`` (colour, label), with a ``keys`` list aligned to them.
    """
    t = t or thresholds()
    ids = settlements["id"].astype(str)
    verdict = _audit_verdicts(settlements, audit)
    if verdict is not None:
        keys = list(_VERDICT_COLOURS)
        status = verdict.fillna("no_data")
        colours = [_VERDICT_COLOURS[k] for k in keys]
        title = text("settlement_verdict", lang)
    else:
        keys = list(_SERVICE_COLOURS)
        minp = pd.to_numeric(settlements.get("min_pressure_m", pd.Series(np.nan, index=settlements.index)),
                             errors="coerce").to_numpy()
        head = pd.to_numeric(settlements.get("service_head_m", pd.Series(np.nan, index=settlements.index)),
                             errors="coerce").to_numpy()
        comp = pd.to_numeric(settlements.get("pressure_compliance", pd.Series(np.nan, index=settlements.index)),
                             errors="coerce").to_numpy()
        out = []
        for mp, sh, c in zip(minp, head, comp):
            if np.isnan(mp):
                out.append("no_data")
            elif mp < t["pdd_minimum_pressure_m"]:
                out.append("no_water")
            elif (not np.isnan(c) and c < t["pressure_compliance_min"]) or (np.isnan(c) and not np.isnan(sh) and mp < sh):
                out.append("below")
            elif not np.isnan(sh) and mp < sh:
                out.append("mostly")
            else:
                out.append("meets")
        status = pd.Series(out, index=ids)
        colours = [_SERVICE_COLOURS[k] for k in keys]
        title = text("settlement_service", lang)
    labels = [text(k, lang, p=f"{t['pressure_compliance_min']:.0%}") for k in keys]
    legend = {"title": title, "items": [[c, lab] for c, lab in zip(colours, labels)] + [[_NODATA, text("no_data", lang)]],
              "keys": keys + ["no_data"], "shape": "square"}
    return status, legend


# --------------------------------------------------------------------------- geometry

def _simplify(gdf: gpd.GeoDataFrame, tol_m: float) -> gpd.GeoSeries:
    geom = gdf.geometry
    if tol_m <= 0:
        return geom
    crs = gdf.crs
    work = geom if not crs.is_geographic else geom.to_crs(gdf.estimate_utm_crs())
    lines = work.geom_type.isin(["LineString", "MultiLineString"])
    # Douglas-Peucker keeps each line's end points; polygons keep their topology.
    simp = work.copy()
    if lines.any():
        simp[lines] = work[lines].simplify(tol_m, preserve_topology=False)
    if (~lines).any():
        simp[~lines] = work[~lines].simplify(tol_m, preserve_topology=True)
    return simp.to_crs(crs) if crs.is_geographic else simp


def _web_geoms(gdf: gpd.GeoDataFrame, tol_m: float) -> gpd.GeoSeries:
    return _simplify(gdf, tol_m).to_crs(WEB_CRS)


def _latlng(coords: np.ndarray) -> list[list[float]]:
    c = np.round(coords[:, [1, 0]], COORD_DIGITS)
    if len(c) > 1:
        keep = np.ones(len(c), dtype=bool)
        keep[1:] = np.any(c[1:] != c[:-1], axis=1)
        keep[-1] = True
        c = c[keep]
    return c.tolist()


def _line_latlng(geom: Any) -> list:
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "MultiLineString":
        return [_latlng(np.asarray(g.coords)) for g in geom.geoms]
    return _latlng(np.asarray(geom.coords))


def _poly_latlng(geom: Any) -> list:
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "MultiPolygon":
        return [_poly_latlng(g) for g in geom.geoms]
    if geom.geom_type != "Polygon":
        return []
    return [_latlng(np.asarray(geom.exterior.coords))] + [_latlng(np.asarray(r.coords)) for r in geom.interiors]


def _point_latlng(geom: Any) -> list[float] | None:
    if geom is None or geom.is_empty:
        return None
    p = geom if geom.geom_type == "Point" else geom.representative_point()
    return [round(p.y, COORD_DIGITS), round(p.x, COORD_DIGITS)]


# --------------------------------------------------------------------------- columns

def _nums(df: pd.DataFrame, col: str, digits: int = 2) -> list[float | None] | None:
    if col not in df.columns:
        return None
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    if np.isnan(v).all():
        return None
    return [None if np.isnan(x) else (round(float(x), digits) if digits else int(round(float(x)))) for x in v]


def _strs(df: pd.DataFrame, col: str) -> list[str | None] | None:
    if col not in df.columns:
        return None
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in df[col]]


def _names(df: pd.DataFrame, lang: str) -> list[str]:
    zh = _strs(df, "name_zh") or [None] * len(df)
    en = _strs(df, "name_en") or [None] * len(df)
    ids = [str(i) for i in df["id"]]
    out = []
    for z, e, i in zip(zh, en, ids):
        z, e = (z or "").strip(), (e or "").strip()
        if lang == "zh":
            out.append(z or e or i)
        elif lang == "en":
            out.append(e or z or i)
        else:
            out.append(" ".join(dict.fromkeys(x for x in (z, e) if x)) or i)
    return out


class _Cols:
    """Columnar feature properties plus the popup rows that show them (label, column, digits, unit)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {}
        self.popup: list[list] = []

    def add(self, key: str, values: list | None, label: str | None = None, digits: int | None = None,
            unit: str = "") -> None:
        if values is None:
            return
        self.cols[key] = values
        if label is not None:
            self.popup.append([label, key, digits, unit])

    def data(self, **extra: Any) -> dict[str, Any]:
        return {"cols": self.cols, "popup": self.popup, **extra}


# --------------------------------------------------------------------------- inputs

def _check_layers(layers: Mapping[str, Any]) -> dict[str, gpd.GeoDataFrame]:
    if not isinstance(layers, Mapping):
        raise TypeError(f"'layers' should be a mapping of layer name to GeoDataFrame, got {type(layers).__name__}")
    out = {}
    for name, gdf in layers.items():
        if gdf is None:
            continue
        if not isinstance(gdf, gpd.GeoDataFrame):
            if isinstance(gdf, pd.DataFrame):
                continue  # attribute tables (patterns, metadata) are not mapped
            raise TypeError(f"layer {name!r} should be a GeoDataFrame, got {type(gdf).__name__}")
        if gdf.crs is None:
            raise NetworkDataError(f"layer {name!r} has no CRS; assign one (e.g. EPSG:4545) with set_crs()")
        if len(gdf) and "id" not in gdf.columns:
            raise NetworkDataError(f"layer {name!r} has no 'id' column; every mapped feature needs an id")
        out[str(name)] = gdf
    return out


def is_georeferenced(crs: Any) -> bool:
    """Whether a CRS places data on the Earth (geographic or projected), unlike a local schematic CRS."""
    return bool(crs is not None and (crs.is_geographic or crs.is_projected))


def _schematic(lay: dict[str, gpd.GeoDataFrame]) -> bool:
    return any(not is_georeferenced(g.crs) for g in lay.values())


def _check_include(include: Iterable[str] | None, available: Iterable[str]) -> list[str]:
    if include is None:
        return [k for k in MAP_LAYERS if k in set(available)]
    if isinstance(include, str):
        include = [include]
    chosen = []
    for name in include:
        if name not in MAP_LAYERS:
            raise ConfigError(f"unknown map layer {name!r}; valid: {', '.join(MAP_LAYERS)}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def _criticality_column(pipes: pd.DataFrame) -> str | None:
    for c in CRITICALITY_COLUMNS:
        if c in pipes.columns and pd.to_numeric(pipes[c], errors="coerce").notna().any():
            return c
    return None


def _pipe_min_pressure(pipes: pd.DataFrame, nodes: pd.DataFrame | None) -> pd.Series | None:
    if "min_pressure_m" in pipes.columns:
        return pd.to_numeric(pipes["min_pressure_m"], errors="coerce")
    if nodes is None or "min_pressure_m" not in nodes.columns or "from_node" not in pipes.columns:
        return None
    p = pd.to_numeric(nodes.set_index(nodes["id"].astype(str))["min_pressure_m"], errors="coerce")
    a = p.reindex(pipes["from_node"].astype(str)).to_numpy()
    b = p.reindex(pipes["to_node"].astype(str)).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.fmin(a, b)
    return pd.Series(out, index=pipes.index)


def _pipe_colourings(pipes: pd.DataFrame, nodes: pd.DataFrame | None, t: Mapping[str, float],
                     lang: str) -> dict[str, dict[str, Any]]:
    """Available pipe colourings: legend and class index per pipe."""
    modes: dict[str, dict[str, Any]] = {}
    lg = _dn_legend(lang)
    modes["class"] = {"legend": lg, "idx": classify(pd.to_numeric(pipes["diameter_mm"], errors="coerce")
                                                     if "diameter_mm" in pipes else np.full(len(pipes), np.nan), lg)}
    mp = _pipe_min_pressure(pipes, nodes)
    if mp is not None and mp.notna().any():
        lg = pressure_legend(t, lang=lang, shape="line", title=text("by_min_pressure", lang))
        modes["min_pressure"] = {"legend": lg, "idx": classify(mp.to_numpy(dtype=float), lg)}
    if "max_velocity_ms" in pipes.columns and pd.to_numeric(pipes["max_velocity_ms"], errors="coerce").notna().any():
        lg = _velocity_legend(t, lang)
        modes["velocity"] = {"legend": lg, "idx": classify(pd.to_numeric(pipes["max_velocity_ms"], errors="coerce"), lg)}
    crit = _criticality_column(pipes)
    if crit is not None:
        lg = _people_legend(lang)
        modes["criticality"] = {"legend": lg, "idx": classify(pd.to_numeric(pipes[crit], errors="coerce"), lg)}
    for m in modes.values():
        m["idx"] = [int(i) for i in m["idx"]]
    return modes


def _check_diff(diff: Mapping[str, Any] | None, layers: Mapping[str, gpd.GeoDataFrame]) -> dict[str, Any] | None:
    if diff is None:
        return None
    if not isinstance(diff, Mapping):
        raise ConfigError(f"diff must be a mapping with 'pipes' and/or 'settlements' (see scenario_diff), "
                          f"got {type(diff).__name__}")
    unknown = sorted(set(diff) - {"label", "pipes", "settlements", "nodes"})
    if unknown:
        raise ConfigError(f"diff has unknown key(s) {', '.join(map(repr, unknown))}; "
                          "use 'label', 'pipes', 'settlements' (see scenario_diff)")
    out: dict[str, Any] = {"label": str(diff.get("label") or "")}
    for key in ("pipes", "settlements"):
        val = diff.get(key)
        if val is None:
            out[key] = pd.DataFrame()
            continue
        df = val if isinstance(val, pd.DataFrame) else pd.DataFrame(index=pd.Index([str(v) for v in val]))
        df = df.copy()
        df.index = df.index.astype(str)
        layer = layers.get(key)
        valid = set(layer["id"].astype(str)) if layer is not None else set()
        missing = sorted(set(df.index) - valid)
        if missing:
            raise NetworkDataError(f"diff: {key} id(s) {', '.join(map(repr, missing[:5]))} are not in the "
                                   f"{key} layer; {closest(missing[0], valid)}")
        out[key] = df
    return out


# --------------------------------------------------------------------------- payload

#: Accepted column names of a scenario's settlement diff (first found is used).
DIFF_ALIASES = {
    "people_without_water_max": ("people_without_water_max", "people_without_water"),
    "person_hours_without_water": ("person_hours_without_water", "people_hours_without_water"),
    "min_pressure_change_m": ("min_pressure_change_m", "delta_min_pressure_m"),
}
#: Audit dimensions shown in settlement popups (``<dimension>_verdict``, ``<dimension>_reason``).
AUDIT_DIMENSIONS = ("network", "quality", "pressure", "price")


def _first_col(df: pd.DataFrame, names: Iterable[str]) -> str:
    for n in names:
        if n in df.columns:
            return n
    return ""


def _audit_source(st: pd.DataFrame, audit: pd.DataFrame | None) -> pd.DataFrame:
    if audit is None:
        return st.set_index(st["id"].astype(str))
    a = audit
    for key in ("id", "settlement_id"):
        if key in a.columns:
            a = a.set_index(key)
            break
    a = a.copy()
    a.index = a.index.astype(str)
    return a


def _audit_columns(c: _Cols, a: pd.DataFrame, lang: str) -> None:
    """Popup rows from an audit table: score, per-dimension verdicts, reasons of those not passed."""
    c.add("score", _nums(a, "score", 0), text("score", lang), 0)
    for d in AUDIT_DIMENSIONS:
        col = f"{d}_verdict"
        if col in a.columns:
            c.add(f"v_{d}", [None if v is None else (text(v.lower(), lang) if v.lower() in _VERDICT_COLOURS else v)
                             for v in _strs(a, col)], text(f"dim_{d}", lang))
    reasons: list[str | None] = []
    dims = [d for d in AUDIT_DIMENSIONS if f"{d}_reason" in a.columns]
    for _, row in a.iterrows():
        parts = [str(row[f"{d}_reason"]) for d in dims
                 if isinstance(row[f"{d}_reason"], str) and row[f"{d}_reason"]
                 and str(row.get(f"{d}_verdict", "")).lower() != "pass"]
        if not dims:
            col = _first_col(a, ("reason", "reasons", "detail"))
            v = row[col] if col else None
            parts = [str(v)] if isinstance(v, str) and v else []
        reasons.append("; ".join(parts) or None)
    if any(reasons):
        c.add("reason", reasons, text("reason", lang))
    col = _first_col(a, ("fixes", "fix"))
    if col:
        c.add("fixes", _strs(a, col), text("fixes", lang))


def _settlement_data(st: gpd.GeoDataFrame, *, lang: str, t: Mapping[str, float], audit: pd.DataFrame | None,
                     diff: dict[str, Any] | None, tol_m: float) -> tuple[dict[str, Any], dict[str, Any]]:
    status, legend = settlement_status(st, audit=audit, t=t, lang=lang)
    keys = legend["keys"]
    geoms = _web_geoms(st, tol_m)
    c = _Cols()
    c.add("name", _names(st, lang))
    ids = [str(i) for i in st["id"]]
    c.add("id", ids, text("id", lang))
    if "kind" in st.columns:
        c.add("kind", [text(k, lang) if k in ("village", "community") else str(k) for k in st["kind"]],
              text("kind", lang))
    basis = "verdict" if legend["title"] == text("settlement_verdict", lang) else "service_level"
    c.add("status", [legend["items"][keys.index(s)][1] for s in status], text(basis, lang))
    c.add("population", _nums(st, "population", 0), text("population", lang), 0)
    c.add("minp", _nums(st, "min_pressure_m"), text("min_pressure", lang), 1, "m")
    c.add("head", _nums(st, "service_head_m"), text("service_head", lang), 1, "m")
    comp = _nums(st, "pressure_compliance", 4)
    c.add("comp", None if comp is None else [None if v is None else round(100 * v, 1) for v in comp],
          text("compliance", lang), 1, "%")
    c.add("served", _nums(st, "demand_served_pct", 1), text("served", lang), 1, "%")
    c.add("cl", _nums(st, "min_chlorine_mgL", 3), text("min_chlorine", lang), 2, "mg/L")
    c.add("age", _nums(st, "max_age_h", 1), text("max_age", lang), 1, "h")
    if basis == "verdict":
        _audit_columns(c, _audit_source(st, audit).reindex(ids), lang)
    changed: list[int] = []
    if diff is not None and len(diff["settlements"]):
        d = diff["settlements"].reindex(ids)
        c.add("pww", _nums(d, _first_col(d, DIFF_ALIASES["people_without_water_max"]), 0),
              text("people_without_water", lang), 0)
        c.add("pwh", _nums(d, _first_col(d, DIFF_ALIASES["person_hours_without_water"]), 0),
              text("people_hours", lang), 0)
        c.add("dminp", _nums(d, _first_col(d, DIFF_ALIASES["min_pressure_change_m"]), 2),
              text("min_pressure_change", lang), 1, "m")
        c.add("change", _strs(d, "change"), text("change", lang))
        changed = [i for i, sid in enumerate(ids) if sid in diff["settlements"].index]
    data = c.data(geom=[_poly_latlng(g) for g in geoms], cls=[keys.index(s) for s in status],
                  label=c.cols["name"], changed=changed)
    return data, legend


def _pipe_data(pp: gpd.GeoDataFrame, nodes: gpd.GeoDataFrame | None, *, lang: str, t: Mapping[str, float],
               diff: dict[str, Any] | None, tol_m: float, colour_by: str) -> dict[str, Any]:
    modes = _pipe_colourings(pp, nodes, t, lang)
    if colour_by not in modes:
        need = {"min_pressure": "'min_pressure_m' on pipes or nodes", "velocity": "'max_velocity_ms'",
                "criticality": " or ".join(map(repr, CRITICALITY_COLUMNS))}[colour_by]
        warnings.warn(f"pipe_colour_by={colour_by!r} needs column {need} on the pipes layer; "
                      "colouring pipes by diameter and class instead", stacklevel=3)
        colour_by = "class"
    geoms = _web_geoms(pp, tol_m)
    cls = [str(v) if v in ("main", "branch") else "main" for v in
           (pp["class"] if "class" in pp.columns else ["main"] * len(pp))]
    dn = pd.to_numeric(pp["diameter_mm"], errors="coerce").fillna(100.0).to_numpy() \
        if "diameter_mm" in pp.columns else np.full(len(pp), 100.0)
    weight = [round(float(min(2.5 + d / 150.0, 6.0)), 1) if k == "main" else round(float(min(1.2 + d / 150.0, 2.2)), 1)
              for k, d in zip(cls, dn)]
    c = _Cols()
    ids = [str(i) for i in pp["id"]]
    c.add("id", ids)
    c.add("class", [text(k, lang) for k in cls], text("class", lang))
    c.add("dn", _nums(pp, "diameter_mm", 0), text("diameter", lang), 0, "mm")
    c.add("material", _strs(pp, "material"), text("material", lang))
    length = _nums(pp, "length_m", 0)
    if length is None:
        length = [int(round(x)) for x in pp.geometry.length] if not pp.crs.is_geographic else None
    c.add("length", length, text("length", lang), 0, "m")
    mp = _pipe_min_pressure(pp, nodes)
    if mp is not None:
        c.add("minp", _nums(pd.DataFrame({"v": mp}), "v"), text("min_pressure", lang), 1, "m")
    c.add("vmax", _nums(pp, "max_velocity_ms", 3), text("max_velocity", lang), 2, "m/s")
    c.add("flow", _nums(pp, "mean_flow_ls", 3), text("mean_flow", lang), 2, "L/s")
    crit = _criticality_column(pp)
    if crit is not None:
        c.add("crit", _nums(pp, crit, 0), text("criticality", lang), 0)
    changed: list[int] = []
    if diff is not None and len(diff["pipes"]):
        d = diff["pipes"].reindex(ids)
        c.add("change", _strs(d, "change") or [None if i not in diff["pipes"].index else text("changed_pipe", lang)
                                                for i in ids], text("change", lang))
        changed = [i for i, pid in enumerate(ids) if pid in diff["pipes"].index]
    return c.data(geom=[_line_latlng(g) for g in geoms], pclass=cls, weight=weight, modes=modes,
                  mode=colour_by, changed=changed, title="id")


def _facility_data(fac: gpd.GeoDataFrame, *, lang: str, tank_level: pd.DataFrame | None,
                   pumps: gpd.GeoDataFrame | None) -> dict[str, Any]:
    fac = fac[fac["kind"].isin(list(FACILITY_ICONS))] if "kind" in fac.columns else fac.iloc[0:0]
    geoms = fac.geometry.to_crs(WEB_CRS)
    c = _Cols()
    kinds = [str(k) for k in fac["kind"]]
    c.add("name", _names(fac, lang))
    c.add("id", [str(i) for i in fac["id"]], text("id", lang))
    c.add("kind", [text(k, lang) for k in kinds], text("kind", lang))
    c.add("head", _nums(fac, "head_m", 1), text("head", lang), 1, "m")
    c.add("capacity", _nums(fac, "capacity_m3d", 0), text("capacity", lang), 0, "m³/d")
    c.add("qd", _nums(fac, "design_flow_ls", 2), text("design_flow", lang), 1, "L/s")
    c.add("hd", _nums(fac, "design_head_m", 1), text("design_head", lang), 1, "m")
    c.add("fills", _strs(fac, "fills"), text("fills", lang))
    c.add("bottom", _nums(fac, "bottom_elev_m", 1), text("bottom_elev", lang), 1, "m")
    lo, hi = _nums(fac, "min_level_m", 2), _nums(fac, "max_level_m", 2)
    if lo is not None and hi is not None:
        c.add("levels", [None if a is None or b is None else f"{a:g}–{b:g} m" for a, b in zip(lo, hi)],
              text("level_range", lang))
    vol = _nums(fac, "volume_m3", 0)
    if vol is None and {"diameter_m", "max_level_m"} <= set(fac.columns):
        d = pd.to_numeric(fac["diameter_m"], errors="coerce") ** 2 * math.pi / 4.0
        vol = _nums(pd.DataFrame({"v": d * pd.to_numeric(fac["max_level_m"], errors="coerce")}), "v", 0)
    c.add("volume", vol, text("volume", lang), 0, "m³")
    if tank_level is not None and len(tank_level.columns) and "node_id" in fac.columns:
        lv = tank_level.reindex(columns=fac["node_id"].astype(str))
        c.add("simlevel", [None if pd.isna(a) else f"{a:.2f}–{b:.2f} m" for a, b in zip(lv.min(), lv.max())],
              text("sim_level", lang))
    if pumps is not None and len(pumps) and {"station_id", "energy_kwh"} <= set(pumps.columns):
        e = pd.to_numeric(pumps["energy_kwh"], errors="coerce").groupby(pumps["station_id"].astype(str)).sum()
        c.add("energy", _nums(pd.DataFrame({"v": e.reindex(fac["id"].astype(str)).to_numpy()}), "v", 0),
              text("energy", lang), 0, "kWh")
    return c.data(latlng=[_point_latlng(g) for g in geoms], fkind=kinds, title="name")


def _node_data(nodes: gpd.GeoDataFrame, *, lang: str, t: Mapping[str, float], pressure: pd.DataFrame | None,
               settlements: gpd.GeoDataFrame | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    ids_all = nodes["id"].astype(str)
    if pressure is not None:
        cols = [str(c) for c in pressure.columns]
        unknown = sorted(set(cols) - set(ids_all))
        if unknown:
            raise NetworkDataError(f"pressure: node id(s) {', '.join(map(repr, unknown[:5]))} are not in the nodes "
                                   f"layer; {closest(unknown[0], ids_all)} — give the pressures of this network")
        show = nodes.set_index(ids_all).loc[cols].reset_index(drop=True)
    else:
        dem = pd.to_numeric(nodes.get("base_demand_m3d", pd.Series(0.0, index=nodes.index)), errors="coerce").fillna(0)
        kind = nodes.get("kind", pd.Series("junction", index=nodes.index))
        mask = (kind == "junction") & (dem > 0)
        if not mask.any():
            mask = kind == "junction"
        show = nodes[mask.to_numpy()].reset_index(drop=True)
    show = gpd.GeoDataFrame(show, geometry=nodes.geometry.name, crs=nodes.crs)
    lg = pressure_legend(t, lang=lang)
    if "min_pressure_m" in show.columns:
        minp = pd.to_numeric(show["min_pressure_m"], errors="coerce").to_numpy(dtype=float)
    elif pressure is not None:
        minp = pressure.min().to_numpy(dtype=float)
    else:
        minp = np.full(len(show), np.nan)
    geoms = show.geometry.to_crs(WEB_CRS)
    c = _Cols()
    ids = [str(i) for i in show["id"]]
    c.add("id", ids)
    if "settlement_id" in show.columns:
        names = {}
        if settlements is not None and len(settlements):
            names = dict(zip(settlements["id"].astype(str), _names(settlements, lang)))
        c.add("settlement", [None if s is None else names.get(s, s) for s in _strs(show, "settlement_id")],
              text("settlement", lang))
    c.add("population", _nums(show, "population", 0), text("population", lang), 0)
    c.add("elev", _nums(show, "elevation_m", 1), text("elevation", lang), 1, "m")
    c.add("minp", [None if np.isnan(v) else round(float(v), 2) for v in minp], text("min_pressure", lang), 1, "m")
    c.add("head", _nums(show, "service_head_m", 1), text("service_head", lang), 1, "m")
    c.add("cl", _nums(show, "min_chlorine_mgL", 3), text("min_chlorine", lang), 2, "mg/L")
    c.add("age", _nums(show, "max_age_h", 1), text("max_age", lang), 1, "h")
    data = c.data(latlng=[_point_latlng(g) for g in geoms], cls=[int(i) for i in classify(minp, lg)], title="id")
    series = None
    if pressure is not None and len(pressure.index):
        arr = np.round(pressure.to_numpy(dtype=float) * 10.0)
        flat = [None if np.isnan(v) else int(v) for v in arr.ravel()]
        hours = [float(h) for h in pd.to_numeric(pd.Index(pressure.index), errors="coerce")]
        series = {"hours": [int(h) if float(h).is_integer() else round(h, 2) for h in hours],
                  "n": len(ids), "scale": 10, "values": flat}
    return data, lg, series


def _json_for_html(obj: Any) -> str:
    """JSON safe inside an HTML ``<script type="application/json">`` (no ``</``, no comment openers)."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _bounds(geoms: list[gpd.GeoSeries]) -> list[list[float]]:
    b = pd.concat(geoms).total_bounds
    return [[round(float(b[1]), COORD_DIGITS), round(float(b[0]), COORD_DIGITS)],
            [round(float(b[3]), COORD_DIGITS), round(float(b[2]), COORD_DIGITS)]]


def _tiles(tiles: str, key: str | None, lang: str) -> list[dict[str, Any]]:
    if tiles == "none":
        return []
    if tiles == "osm":
        return [{"name": text("osm", lang), "layers": [{
            "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "options": {"maxZoom": 19, "attribution": "&copy; OpenStreetMap contributors"}}]}]
    k = key or TIANDITU_KEY_PLACEHOLDER
    base = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=")
    opts = {"subdomains": "01234567", "maxZoom": 18, "attribution": "&copy; 天地图 Tianditu"}
    return [{"name": text("tianditu", lang), "layers": [
        {"url": base.replace("{layer}", "vec") + k, "options": opts},
        {"url": base.replace("{layer}", "cva") + k, "options": {**opts, "attribution": ""}}]}]


# --------------------------------------------------------------------------- map

class _ServiceLayers(MacroElement):
    """The map's data (one JSON block) and the small app that draws it, as a folium child."""

    def __init__(self, payload: str, data_id: str) -> None:
        super().__init__()
        self._name = "ServiceLayers"
        self._id = "layers"
        self.payload = payload
        self.data_id = data_id

    def render(self, **kwargs: Any) -> None:
        figure = self.get_root()
        figure.html.add_child(_Raw(f'<script type="application/json" id="{self.data_id}">{self.payload}</script>'),
                              name="ws_data")
        figure.script.add_child(_Raw(f"({_APP_JS})({self._parent.get_name()}, {json.dumps(self.data_id)});"),
                                name="ws_app")


class _Raw(Element):
    """Text put on the page as is (not run through Jinja)."""

    def __init__(self, content: str) -> None:
        super().__init__()
        self._content = content

    def render(self, **kwargs: Any) -> str:
        return self._content


def _layers_to_show(lay: Mapping[str, gpd.GeoDataFrame], district: gpd.GeoDataFrame | None,
                    include: Any) -> list[str]:
    """The layers to draw: those asked for (default all) among those with features.

    Raises NetworkDataError when a layer asked for has no features, or nothing but
    the district outline would be drawn.
    """
    avail = [k for k in ("settlements", "pipes", "facilities", "nodes") if k in lay and len(lay[k])]
    if district is not None and len(district):
        avail.append("district")
    show = _check_include(include, avail)
    missing = [k for k in show if k not in avail]
    if missing:
        raise NetworkDataError(f"layer(s) {', '.join(map(repr, missing))} asked for but not in the data "
                               f"(available: {', '.join(avail) or 'none'})")
    if not [k for k in show if k != "district"]:
        raise NetworkDataError(f"nothing to map: give at least one of the layers {', '.join(MAP_LAYERS[:4])} "
                               "with features")
    return show


def _title_text(title: str | tuple[str, str], lang: str) -> str:
    """The title in the map's language: a (zh, en) pair gives one or both."""
    if isinstance(title, tuple):
        return {"zh": title[0], "en": title[1]}.get(lang, " ".join(dict.fromkeys(x for x in title if x)))
    return str(title or "")


def service_map(layers: Mapping[str, gpd.GeoDataFrame], *, title: str | tuple[str, str] = "", lang: str = "both",
                pressure: pd.DataFrame | None = None, include: Iterable[str] | None = None,
                pipe_colour_by: str = "class", audit: pd.DataFrame | None = None,
                diff: Mapping[str, Any] | None = None, tank_level: pd.DataFrame | None = None,
                district: gpd.GeoDataFrame | None = None, tiles: str = "none", tianditu_key: str | None = None,
                t: Mapping[str, float] | None = None, simplify_m: float = 2.5) -> folium.Map:
    """Build the service map of a run (folium/Leaflet, offline, bilingual).

    Parameters
    ----------
    layers
        GeoDataFrames by name — ``nodes``, ``pipes``, ``facilities``,
        ``settlements`` and optionally ``pumps`` — in any CRS, usually
        :func:`watersupply.baseline.result_layers` (summary results as columns:
        ``min_pressure_m``, ``max_velocity_ms``, ``min_chlorine_mgL``, ``max_age_h``,
        a criticality column such as ``criticality_people``, a ``verdict``, …).
    title
        Map title, or ``(zh, en)`` chosen by `lang`.
    lang
        ``zh``, ``en`` or ``both`` for every label, legend and popup.
    pressure
        Pressure (m), hours × demand node ids: node markers are these nodes, and
        a time slider steps through the hours.
    include
        Layers to show, from :data:`MAP_LAYERS` (default: all available).
    pipe_colour_by
        Initial pipe colouring, one of :data:`PIPE_COLOURINGS`; the others that
        have data can be switched to in the map. Falls back to ``class`` with a
        warning when the column is missing.
    audit
        Audit verdicts (``pass``/``warn``/``fail``) by settlement id, column
        ``verdict`` (and optionally ``reason``); a ``verdict`` column on the
        settlements layer is used when this is None.
    diff
        What a scenario changed against the baseline (see :func:`scenario_diff`):
        ``{"label": str, "pipes": DataFrame/ids, "settlements": DataFrame}``.
    tank_level
        Simulated reservoir levels (hours × reservoir node ids) for the popups.
    district
        District outline (any CRS; see :func:`read_district`).
    tiles
        Basemap: ``none`` (default, offline), ``osm`` or ``tianditu``.
    tianditu_key
        Tianditu key (letters and digits); a placeholder is used without it.
    t
        Thresholds (see :func:`watersupply.standards.thresholds`).
    simplify_m
        Douglas-Peucker tolerance (m) for pipe and outline geometry; end points
        are always kept. 0 disables it.

    Returns
    -------
    folium.Map
        Render with :func:`map_html` or write with :func:`write_map`.

    Raises
    ------
    ConfigError
        Unknown `lang`, `include` layer, `pipe_colour_by`, `tiles` or a bad key.
    NetworkDataError
        A layer without CRS, or pressure/diff/audit ids not in the layers.

    Examples
    --------
    >>> from watersupply.baseline import run_baseline, result_layers
    >>> from watersupply.io import get_path, read_network
    >>> run = run_baseline(read_network(get_path("tonghui")), duration_h=2, age=False)  # doctest: +SKIP
    >>> m = service_map(result_layers(run), lang="en")  # doctest: +SKIP
    """
    t = t or thresholds()
    _check_lang(lang)
    if pipe_colour_by not in PIPE_COLOURINGS:
        raise ConfigError(f"pipe_colour_by must be one of {', '.join(PIPE_COLOURINGS)}, got {pipe_colour_by!r}")
    if tiles not in TILES:
        raise ConfigError(f"tiles must be one of {', '.join(TILES)}, got {tiles!r}")
    if tianditu_key is not None and not re.fullmatch(r"[A-Za-z0-9]{8,64}", tianditu_key):
        raise ConfigError("tianditu_key must be 8–64 letters and digits (the key from console.tianditu.gov.cn), "
                          f"got {tianditu_key!r}")
    if tiles == "tianditu" and not tianditu_key:
        warnings.warn("tiles='tianditu' without tianditu_key: the map uses a placeholder key and will show no "
                      "basemap until you give yours", stacklevel=2)
    if simplify_m < 0:
        raise ConfigError(f"simplify_m must be >= 0 (metres), got {simplify_m!r}")
    lay = _check_layers(layers)
    schematic = _schematic(lay)
    if schematic:
        if tiles != "none":
            raise ConfigError(f"tiles={tiles!r}: the network is a schematic drawing (local CRS, not georeferenced) "
                              "and cannot be drawn on a basemap; give the real CRS (--crs) or tiles='none'")
        if district is not None:
            warnings.warn("the network is a schematic drawing (not georeferenced); the district outline is left out",
                          stacklevel=2)
            district = None
        b = pd.concat([g.geometry for g in lay.values() if len(g)]).total_bounds
        cx, cy = (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0  # centre the drawing on 0°N 0°E
        local = SCHEMATIC_WEB_CRS.replace("+x_0=0 +y_0=0", f"+x_0={cx:.3f} +y_0={cy:.3f}")
        lay = {k: v.set_crs(local, allow_override=True) for k, v in lay.items()}
    show = _layers_to_show(lay, district, include)
    dff = _check_diff(diff, lay)
    title_text = _title_text(title, lang)

    payload: dict[str, Any] = {"lang": lang, "title": title_text, "legends": {}}
    txt = {k: text(k, lang) for k in ("settlements", "mains", "branches", "facilities", "nodes", "district",
                                       "changes", "time", "min_over_run", "min_btn", "play", "pipe_colour",
                                       "legend", "pressure_now", "basemap_none", "notes", "plant",
                                       "pump_station", "reservoir", "changed_pipe", "affected_settlement")}
    txt["hour"] = list(_TEXT["hour"]) if lang == "both" else _TEXT["hour"][0 if lang == "zh" else 1]
    txt["modes"] = {m: text(f"by_{m}", lang) for m in PIPE_COLOURINGS}
    payload["text"] = txt
    extent = []
    if "settlements" in show:
        st = lay["settlements"]
        payload["settlements"], payload["legends"]["settlements"] = _settlement_data(
            st, lang=lang, t=t, audit=audit, diff=dff, tol_m=simplify_m)
        extent.append(st.geometry.to_crs(WEB_CRS))
    if "pipes" in show:
        pp = lay["pipes"]
        payload["pipes"] = _pipe_data(pp, lay.get("nodes"), lang=lang, t=t, diff=dff, tol_m=simplify_m,
                                      colour_by=pipe_colour_by)
        extent.append(pp.geometry.to_crs(WEB_CRS))
    elif pipe_colour_by != "class":
        log.info("pipe_colour_by=%r ignored: pipes are not shown", pipe_colour_by)
    if "facilities" in show:
        payload["facilities"] = _facility_data(lay["facilities"], lang=lang, tank_level=tank_level,
                                               pumps=lay.get("pumps"))
        payload["icons"] = FACILITY_ICONS
        payload["legends"]["facilities"] = {"title": text("facilities", lang), "shape": "icon",
                                            "items": [[k, text(k, lang)] for k in FACILITY_ICONS]}
        extent.append(lay["facilities"].geometry.to_crs(WEB_CRS))
    if "nodes" in show:
        nd, lg, series = _node_data(lay["nodes"], lang=lang, t=t, pressure=pressure, settlements=lay.get("settlements"))
        payload["nodes"], payload["legends"]["nodes"] = nd, lg
        if series is not None:
            payload["pressure"] = series
        extent.append(lay["nodes"].geometry.to_crs(WEB_CRS))
    notes = [text("note_schematic" if schematic else "note_crs", lang),
             text("note_offline", lang) if tiles == "none" else None]
    if "district" in show:
        dist = gpd.GeoDataFrame(geometry=_web_geoms(district, simplify_m * 10), crs=WEB_CRS)
        payload["district"] = {"geom": [_poly_latlng(g) for g in dist.geometry]}
        notes.append(text("note_district", lang))
        if not extent:
            extent.append(dist.geometry)
    if dff is not None:
        payload["changes"] = {"label": dff["label"]}
        payload["legends"]["changes"] = {"title": text("changes", lang) + (f": {dff['label']}" if dff["label"] else ""),
                                         "shape": "line", "items": [[_CHANGE_COLOUR, text("changed_pipe", lang)],
                                                                    [_CHANGE_COLOUR, text("affected_settlement", lang)]]}
    if "pressure" in payload:
        notes.append(text("note_slider", lang))
    payload["tiles"] = _tiles(tiles, tianditu_key, lang)
    if tiles == "tianditu" and not tianditu_key:
        notes.append(text("note_tianditu_key", lang))
    notes.append(text("note_gcj", lang))
    payload["notes"] = [n for n in notes if n]
    payload["bounds"] = _bounds(extent)
    payload["change_colour"] = _CHANGE_COLOUR

    (s, w), (n, e) = payload["bounds"]
    m = folium.Map(location=[(s + n) / 2.0, (w + e) / 2.0], zoom_start=13, tiles=None, control_scale=False,
                   prefer_canvas=False)
    m._id = "service"
    m.default_js = []  # no CDN scripts (jquery, bootstrap, leaflet, awesome-markers)
    m.default_css = []
    js, css = leaflet_assets()
    root = m.get_root()
    root._id = "page"
    head = [f"<title>{html.escape(title_text or text('nodes', lang))}</title>", _FONT_SLOT,
            f"<style>{css}</style>", f"<style>{_APP_CSS}</style>", f"<script>{js}</script>"]
    root.header.add_child(_Raw("\n".join(head)), name="ws_head", index=0)
    _ServiceLayers(_json_for_html(payload), "ws-data").add_to(m)
    # notebooks display the map through _repr_html_: give them the same page, embedded font included
    m._repr_html_ = functools.partial(_notebook_html, m)
    return m


def _notebook_html(m: folium.Map, **_: Any) -> str:
    """The map as an iframe for Jupyter, with the page :func:`map_html` writes (font included)."""
    page = html.escape(map_html(m), quote=True)
    return (f'<iframe srcdoc="{page}" style="width:100%; height:620px; border:none" '
            'sandbox="allow-scripts allow-same-origin"></iframe>')


def map_html(m: folium.Map) -> str:
    """The map as one self-contained HTML page.

    A map from :func:`service_map` gets its Chinese font here: the page is
    rendered, every character it can show is collected
    (:func:`page_characters`) and the font subset to them is embedded
    (:func:`font_face_css`).
    """
    page = m.get_root().render()
    if _FONT_SLOT in page:
        face = font_face_css(page_characters(page))
        page = page.replace(_FONT_SLOT, f'<style id="ws-font">{face}</style>', 1)
    return page


def write_map(m: folium.Map, path: str | os.PathLike, *, max_mb: float | None = None) -> Path:
    """Write the map as one self-contained HTML file, atomically.

    Parameters
    ----------
    m
        A map from :func:`service_map` (or any folium map).
    path
        Target file.
    max_mb
        Refuse to write (ConfigError) when the page would exceed this size.
    """
    page = map_html(m)
    size_mb = len(page.encode("utf-8")) / 1e6
    if max_mb is not None and size_mb > max_mb:
        raise ConfigError(f"{path}: the map would be {size_mb:.1f} MB, more than max_mb={max_mb:g}; show fewer "
                          "layers or raise simplify_m")
    refs = [u for u in external_references(page)]
    if refs:
        log.warning("map %s references external resources: %s", path, ", ".join(refs[:5]))
    out = write_text(page, path)
    log.info("wrote %s (%.2f MB)", out, size_mb)
    return out


# --------------------------------------------------------------------------- diff

def scenario_diff(base: Any, scenario: Any, net: Mapping[str, Any], *, t: Mapping[str, float] | None = None,
                  label: str = "", flow_change: float = 0.25, min_flow_ls: float = 0.5,
                  pressure_drop_m: float = 1.0) -> dict[str, Any]:
    """What a scenario changed against the baseline, for the map's ``diff`` option.

    Parameters
    ----------
    base, scenario
        :class:`~watersupply.simulation.SimulationResult` of the baseline and
        the scenario on the same network ids; compared over their common hours.
    net
        The network's layers.
    label
        Scenario name shown in the legend.
    flow_change, min_flow_ls
        A pipe counts as changed when its mean absolute flow changes by more
        than this share and by more than `min_flow_ls` L/s, or it reverses.
    pressure_drop_m
        A settlement counts as affected when its minimum pressure drops by more
        than this, or people in it are without water that were not before.

    Returns
    -------
    dict
        ``label``; ``pipes`` (DataFrame indexed by pipe id, column ``change``);
        ``settlements`` (DataFrame indexed by settlement id: people_without_water_max
        (peak hour), person_hours_without_water, min_pressure_base_m,
        min_pressure_m, min_pressure_change_m, change).
    """
    from . import metrics

    t = t or thresholds()
    hours = base.pressure.index.intersection(scenario.pressure.index)
    if not len(hours):
        raise ConfigError("base and scenario results share no hours; simulate both over the same period")
    ids = net["pipes"]["id"].astype(str)
    sb = base.status.reindex(index=hours, columns=ids)
    ss = scenario.status.reindex(index=hours, columns=ids)
    qb = 1000.0 * base.flow.reindex(index=hours, columns=ids)
    qs = 1000.0 * scenario.flow.reindex(index=hours, columns=ids)
    rows = {}
    closed_b, closed_s = (sb == 0).any(), (ss == 0).any()
    for pid in ids:
        if closed_s[pid] and not closed_b[pid]:
            rows[pid] = "closed / 关闭"
        elif closed_b[pid] and not closed_s[pid]:
            rows[pid] = "opened / 开启"
    mb, ms = qb.abs().mean(), qs.abs().mean()
    rel = (ms - mb).abs() / mb.where(mb > 0)
    big = ((rel > flow_change) | (mb <= 0) & (ms > min_flow_ls)) & ((ms - mb).abs() > min_flow_ls)
    rev = (np.sign(qb.mean()) * np.sign(qs.mean()) < 0) & (mb > min_flow_ls) & (ms > min_flow_ls)
    for pid in ids:
        if pid in rows:
            continue
        if rev[pid]:
            rows[pid] = "flow reversed / 流向反转"
        elif big[pid]:
            pct = 100.0 * (ms[pid] - mb[pid]) / mb[pid] if mb[pid] > 0 else float("inf")
            rows[pid] = f"mean flow {mb[pid]:.1f} → {ms[pid]:.1f} L/s ({pct:+.0f} %) / 平均流量变化"
    pipes = pd.DataFrame({"change": pd.Series(rows, dtype=object)})
    pipes.index.name = "id"
    st = net.get("settlements")
    settle = pd.DataFrame(columns=["people_without_water_max", "person_hours_without_water", "min_pressure_base_m",
                                   "min_pressure_m", "min_pressure_change_m", "change"])
    if st is not None and len(st):
        step = float(np.median(np.diff(hours.to_numpy(dtype=float)))) if len(hours) > 1 else 1.0
        pb = metrics.people_without_water(_at(base, hours), dict(net), t)
        ps = metrics.people_without_water(_at(scenario, hours), dict(net), t)
        dem = metrics.demand_nodes(dict(net))
        layer = net["nodes"].set_index(net["nodes"]["id"].astype(str))
        sid = layer["settlement_id"].reindex(dem) if "settlement_id" in layer else pd.Series(None, index=dem)
        rows2 = {}
        for s in st["id"].astype(str):
            members = sid.index[sid.astype(str) == s]
            peak_s = float(ps[s].max()) if s in ps else 0.0
            peak_b = float(pb[s].max()) if s in pb else 0.0
            hrs_s = float(ps[s].sum() * step) if s in ps else 0.0
            minb = float(base.pressure.loc[hours, members].min().min()) if len(members) else np.nan
            mins = float(scenario.pressure.loc[hours, members].min().min()) if len(members) else np.nan
            drop = minb - mins
            if peak_s > peak_b or (not np.isnan(drop) and drop > pressure_drop_m):
                what = []
                if peak_s > peak_b:
                    what.append(f"{peak_s:,.0f} people without water / {peak_s:,.0f}人无水")
                if not np.isnan(drop) and drop > pressure_drop_m:
                    what.append(f"min pressure −{drop:.1f} m / 最低压力下降{drop:.1f} m")
                rows2[s] = dict(people_without_water_max=peak_s, person_hours_without_water=hrs_s,
                                min_pressure_base_m=minb, min_pressure_m=mins, min_pressure_change_m=mins - minb,
                                change="; ".join(what))
        if rows2:
            settle = pd.DataFrame.from_dict(rows2, orient="index")
    settle.index.name = "id"
    return {"label": str(label), "pipes": pipes, "settlements": settle}


def _at(result: Any, hours: pd.Index) -> Any:
    import dataclasses

    if result.pressure.index.equals(hours):
        return result
    return dataclasses.replace(result, pressure=result.pressure.loc[hours])


# --------------------------------------------------------------------------- page code

_APP_CSS = """
.leaflet-container{font-family:%FONTS%}
.leaflet-container button,.leaflet-container select,.leaflet-container input{font-family:inherit}
.ws-box{background:rgba(255,255,255,.94);padding:6px 9px;border-radius:5px;box-shadow:0 1px 5px rgba(0,0,0,.35);
 font:12px/1.35 %FONTS%;color:#222;max-width:300px}
.ws-title{font-weight:bold;font-size:15px;max-width:520px}
.ws-legend{max-height:55vh;overflow:auto}
.ws-legend h4{margin:6px 0 3px;font-size:12px}
.ws-legend .ws-item{display:flex;align-items:center;gap:6px;margin:1px 0}
.ws-sw{display:inline-block;width:14px;height:14px;flex:none;box-sizing:border-box}
.ws-sw.circle{border-radius:50%;border:1px solid #333}
.ws-sw.square{border:1px solid #555;opacity:.8}
.ws-sw.line{height:4px;border-radius:2px}
.ws-sw.icon{width:22px;height:22px}
.ws-sw.icon svg{width:22px;height:22px}
.ws-popup table{border-collapse:collapse;font-size:12px}
.ws-popup th{text-align:left;font-weight:normal;color:#555;padding:1px 8px 1px 0;vertical-align:top;white-space:nowrap}
.ws-popup td{font-weight:bold;padding:1px 0}
.ws-popup-title{font-weight:bold;font-size:13px;margin-bottom:4px}
.ws-time input[type=range]{width:220px}
.ws-time button,.ws-mode select{font-size:12px;margin-right:4px}
.ws-icon{background:none;border:none}
.ws-label{background:rgba(255,255,255,.8);border:none;box-shadow:none;font-weight:bold;padding:0 3px}
.ws-notes{max-width:340px;font-size:11px;color:#333}
.ws-notes ul{margin:2px 0 0 14px;padding:0}
.ws-notes summary{font-weight:bold;cursor:pointer}
""".replace("%FONTS%", FONT_STACK)

_APP_JS = r"""function (map, dataId) {
  "use strict";
  var t0 = (window.performance && performance.now) ? performance.now() : 0;
  var D = JSON.parse(document.getElementById(dataId).textContent);
  var T = D.text;
  var state = {hour: -1, timer: null, mode: null};
  var api = {map: map, layers: {}, counts: {}, markers: {nodes: [], pipes: [], settlements: [], facilities: []}};
  window.__wsmap = api;
  // set the final view first: vector layers are then projected and drawn once
  map.fitBounds(D.bounds, {paddingTopLeft: [12, 12], paddingBottomRight: [Math.min(300, map.getSize().x / 4), 12],
                           animate: false});

  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (txt !== undefined && txt !== null) { e.textContent = String(txt); }
    return e;
  }
  function esc(s) { var d = document.createElement("div"); d.textContent = String(s); return d.innerHTML; }
  function fmt(v, digits, unit) {
    if (v === null || v === undefined || v === "") { return "\u2013"; }
    var s;
    if (typeof v === "number") {
      s = (digits === 0) ? Math.round(v).toLocaleString("en-US") :
          (digits === null || digits === undefined) ? String(v) : v.toFixed(digits);
      return unit ? s + " " + unit : s;
    }
    return String(v);
  }
  function colourAt(lg, v) {
    if (v === null || v === undefined || isNaN(v)) { return lg.items[lg.items.length - 1][0]; }
    var i = 0;
    while (i < lg.breaks.length && v >= lg.breaks[i]) { i++; }
    return lg.items[i][0];
  }
  function hourText(h) {
    var hh = D.pressure.hours[h];
    if (Array.isArray(T.hour)) { return T.hour[0].replace("{h}", hh) + " " + T.hour[1].replace("{h}", hh); }
    return T.hour.replace("{h}", hh);
  }
  function popup(layerData, i, title, extraRows) {
    var box = el("div", "ws-popup");
    box.appendChild(el("div", "ws-popup-title", title));
    var tbl = el("table");
    function row(label, value) {
      var tr = el("tr"); tr.appendChild(el("th", null, label)); tr.appendChild(el("td", null, value)); tbl.appendChild(tr);
    }
    layerData.popup.forEach(function (p) {
      var v = layerData.cols[p[1]][i];
      if (v === null || v === undefined) { return; }
      row(p[0], fmt(v, p[2], p[3]));
    });
    (extraRows || []).forEach(function (r) { row(r[0], r[1]); });
    box.appendChild(tbl);
    return box;
  }
  function openPopup(content, latlng) {
    L.popup({maxWidth: 420, maxHeight: 440, autoPanPaddingTopLeft: L.point(40, 130)})
      .setLatLng(latlng).setContent(content).openOn(map);
  }
  function overlay(key, layer) { api.layers[key] = layer; layer.addTo(map); return layer; }

  // ---- district outline
  if (D.district) {
    var dg = L.featureGroup();
    D.district.geom.forEach(function (g) {
      L.polygon(g, {color: "#636363", weight: 2, dashArray: "6 4", fill: false, interactive: false, className: "ws-district"}).addTo(dg);
    });
    overlay("district", dg);
  }
  // ---- settlements
  if (D.settlements) {
    var S = D.settlements, lgS = D.legends.settlements, sg = L.featureGroup();
    S.geom.forEach(function (g, i) {
      var poly = L.polygon(g, {color: "#444", weight: 1.2, fillColor: lgS.items[S.cls[i]][0], fillOpacity: 0.35, className: "ws-settlement"});
      poly._wsi = i;
      poly.bindTooltip(el("span", null, S.label[i]), {permanent: true, direction: "center", className: "ws-label"});
      poly.addTo(sg);
      api.markers.settlements.push(poly);
    });
    sg.on("click", function (e) { openPopup(popup(S, e.layer._wsi, S.label[e.layer._wsi]), e.latlng); });
    overlay("settlements", sg);
    api.counts.settlements = S.geom.length;
  }
  // ---- pipes: mains and branches
  var P = D.pipes;
  function pipeColour(i) { var m = P.modes[state.mode]; return m.legend.items[m.idx[i]][0]; }
  if (P) {
    state.mode = P.mode;
    var groups = {main: L.featureGroup(), branch: L.featureGroup()};
    P.geom.forEach(function (g, i) {
      if (!g.length) { return; }
      var line = L.polyline(g, {color: pipeColour(i), weight: P.weight[i], opacity: 0.9, className: "ws-pipe ws-" + P.pclass[i]});
      line._wsi = i;
      line.addTo(groups[P.pclass[i]]);
      api.markers.pipes.push(line);
    });
    ["main", "branch"].forEach(function (k) {
      groups[k].on("click", function (e) {
        var i = e.layer._wsi; openPopup(popup(P, i, (k === "main" ? T.mains : T.branches) + " " + P.cols.id[i]), e.latlng);
      });
    });
    overlay("branches", groups.branch);
    overlay("mains", groups.main);
    api.counts.mains = groups.main.getLayers().length;
    api.counts.branches = groups.branch.getLayers().length;
  }
  // ---- what changed (scenario)
  if (D.changes) {
    var cg = L.featureGroup(), cc = D.change_colour;
    if (P) {
      P.changed.forEach(function (i) {
        var l = L.polyline(P.geom[i], {color: cc, weight: P.weight[i] + 4, opacity: 0.85, dashArray: "8 5", className: "ws-change ws-change-pipe"});
        l._wsi = i; l.addTo(cg);
        l.on("click", function (e) { openPopup(popup(P, i, T.changed_pipe + " " + P.cols.id[i]), e.latlng); });
      });
    }
    if (D.settlements) {
      D.settlements.changed.forEach(function (i) {
        var s = L.polygon(D.settlements.geom[i], {color: cc, weight: 4, opacity: 0.9, fill: false, className: "ws-change ws-change-settlement"});
        s.on("click", function (e) { openPopup(popup(D.settlements, i, D.settlements.label[i]), e.latlng); });
        s.addTo(cg);
      });
    }
    overlay("changes", cg);
    api.counts.changes = cg.getLayers().length;
  }
  // ---- demand nodes
  var N = D.nodes;
  if (N) {
    var lgN = D.legends.nodes, ng = L.featureGroup();
    N.latlng.forEach(function (ll, i) {
      if (!ll) { return; }
      var c = L.circleMarker(ll, {radius: 4, weight: 0.6, color: "#333", fillColor: lgN.items[N.cls[i]][0], fillOpacity: 0.95, className: "ws-node"});
      c._wsi = i; c.addTo(ng);
      api.markers.nodes[i] = c;
    });
    ng.on("click", function (e) {
      var i = e.layer._wsi, extra = [];
      if (D.pressure && state.hour >= 0) {
        var v = D.pressure.values[state.hour * D.pressure.n + i];
        extra.push([T.pressure_now + " (" + hourText(state.hour) + ")", v === null ? "\u2013" : (v / D.pressure.scale).toFixed(1) + " m"]);
      }
      openPopup(popup(N, i, T.nodes + " " + N.cols.id[i], extra), e.latlng);
    });
    overlay("nodes", ng);
    api.counts.nodes = ng.getLayers().length;
  }
  // ---- facilities
  var F = D.facilities;
  if (F) {
    var fg = L.featureGroup();
    F.latlng.forEach(function (ll, i) {
      if (!ll) { return; }
      var icon = L.divIcon({html: D.icons[F.fkind[i]], className: "ws-icon ws-icon-" + F.fkind[i], iconSize: [24, 24], iconAnchor: [12, 12]});
      var mk = L.marker(ll, {icon: icon, keyboard: true, riseOnHover: true});
      mk._wsi = i;
      mk.bindTooltip(el("span", null, F.cols.name[i]), {direction: "top", offset: [0, -10]});
      mk.addTo(fg);
      api.markers.facilities.push(mk);
    });
    fg.on("click", function (e) { var i = e.layer._wsi; openPopup(popup(F, i, F.cols.name[i]), e.layer.getLatLng()); });
    overlay("facilities", fg);
    api.counts.facilities = fg.getLayers().length;
  }

  // ---- basemaps and layer control
  var bases = null;
  if (D.tiles.length) {
    bases = {};
    bases[esc(T.basemap_none)] = L.layerGroup();
    D.tiles.forEach(function (b, k) {
      var g = L.layerGroup();
      b.layers.forEach(function (t) { L.tileLayer(t.url, t.options).addTo(g); });
      bases[esc(b.name)] = g;
      if (k === 0) { g.addTo(map); }
    });
  }
  var names = {district: T.district, settlements: T.settlements, mains: T.mains, branches: T.branches,
               changes: T.changes + (D.changes && D.changes.label ? ": " + D.changes.label : ""),
               nodes: T.nodes, facilities: T.facilities};
  var overlays = {};
  ["settlements", "mains", "branches", "changes", "nodes", "facilities", "district"].forEach(function (k) {
    if (api.layers[k]) { overlays[esc(names[k])] = api.layers[k]; }
  });
  api.layerControl = L.control.layers(bases, overlays, {collapsed: false, position: "topright"}).addTo(map);

  // ---- title
  if (D.title) {
    var tc = L.control({position: "topleft"});
    tc.onAdd = function () { return el("div", "ws-box ws-title", D.title); };
    tc.addTo(map);
  }

  // ---- legends (one box; a section per visible coloured layer)
  var legendBox = el("div", "ws-box ws-legend");
  function swatch(shape, colour) {
    var s = el("span", "ws-sw " + shape);
    if (shape === "icon") { s.innerHTML = D.icons[colour]; } else { s.style.background = colour; }
    return s;
  }
  function section(key, lg, layerKeys) {
    var visible = layerKeys.some(function (k) { return api.layers[k] && map.hasLayer(api.layers[k]); });
    if (!visible) { return; }
    var sec = el("div", "ws-legend-" + key);
    sec.appendChild(el("h4", null, lg.title));
    lg.items.forEach(function (it) {
      var row = el("div", "ws-item"); row.appendChild(swatch(lg.shape, it[0])); row.appendChild(el("span", null, it[1]));
      sec.appendChild(row);
    });
    legendBox.appendChild(sec);
  }
  function drawLegend() {
    legendBox.textContent = "";
    legendBox.appendChild(el("div", "ws-popup-title", T.legend));
    if (D.legends.settlements) { section("settlements", D.legends.settlements, ["settlements"]); }
    if (P) {
      var lg = P.modes[state.mode].legend;
      section("pipes", {title: lg.title, items: lg.items, shape: "line"}, ["mains", "branches"]);
    }
    if (D.legends.changes) { section("changes", D.legends.changes, ["changes"]); }
    if (D.legends.nodes) {
      var t = D.legends.nodes.title + (D.pressure ? " \u2014 " + (state.hour < 0 ? T.min_over_run : hourText(state.hour)) : "");
      section("nodes", {title: t, items: D.legends.nodes.items, shape: "circle"}, ["nodes"]);
    }
    if (D.legends.facilities) { section("facilities", D.legends.facilities, ["facilities"]); }
  }
  var lc = L.control({position: "bottomright"});
  lc.onAdd = function () { L.DomEvent.disableScrollPropagation(legendBox); return legendBox; };
  lc.addTo(map);
  map.on("overlayadd overlayremove", drawLegend);
  // a layer switched back on is drawn on top: restore the stacking (areas below lines below points)
  function restack() {
    ["settlements", "district"].forEach(function (k) { if (api.layers[k] && map.hasLayer(api.layers[k])) { api.layers[k].bringToBack(); } });
    ["mains", "changes", "nodes"].forEach(function (k) { if (api.layers[k] && map.hasLayer(api.layers[k])) { api.layers[k].bringToFront(); } });
  }
  map.on("overlayadd", restack);

  // ---- pipe colouring switch
  api.setPipeColour = function (mode) {
    if (!P || !P.modes[mode]) { return false; }
    state.mode = mode;
    api.markers.pipes.forEach(function (l) { l.setStyle({color: pipeColour(l._wsi)}); });
    drawLegend();
    return true;
  };
  if (P && Object.keys(P.modes).length > 1) {
    var mc = L.control({position: "topright"});
    mc.onAdd = function () {
      var box = el("div", "ws-box ws-mode");
      box.appendChild(el("label", null, T.pipe_colour + " "));
      var sel = el("select"); sel.id = "ws-pipe-colour";
      Object.keys(P.modes).forEach(function (k) {
        var o = el("option", null, T.modes[k]); o.value = k; if (k === state.mode) { o.selected = true; } sel.appendChild(o);
      });
      sel.addEventListener("change", function () { api.setPipeColour(sel.value); });
      box.appendChild(sel);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    mc.addTo(map);
  }

  // ---- time slider: node pressure hour by hour
  api.setHour = function (h) {
    if (!N) { return; }
    state.hour = h;
    var lgN = D.legends.nodes, Pz = D.pressure;
    api.markers.nodes.forEach(function (c, i) {
      var v = (h < 0 || !Pz) ? N.cols.minp[i] : Pz.values[h * Pz.n + i];
      if (h >= 0 && Pz && v !== null) { v = v / Pz.scale; }
      c.setStyle({fillColor: colourAt(lgN, v)});
    });
    if (api.timeLabel) { api.timeLabel.textContent = h < 0 ? T.min_over_run : hourText(h); }
    drawLegend();
  };
  if (D.pressure && N) {
    var H = D.pressure.hours.length;
    var tcl = L.control({position: "bottomleft"});
    tcl.onAdd = function () {
      var box = el("div", "ws-box ws-time");
      box.appendChild(el("div", "ws-popup-title", T.time + " \u2014 " + T.nodes));
      var slider = el("input"); slider.type = "range"; slider.min = "0"; slider.max = String(H - 1); slider.step = "1";
      slider.value = "0"; slider.id = "ws-time-slider";
      var label = el("div", "ws-time-label", T.min_over_run); label.id = "ws-time-label";
      api.timeLabel = label;
      var play = el("button", null, "\u25b6 " + T.play); play.type = "button"; play.id = "ws-time-play";
      var minb = el("button", null, T.min_btn); minb.type = "button"; minb.id = "ws-time-min";
      slider.addEventListener("input", function () { api.setHour(parseInt(slider.value, 10)); });
      minb.addEventListener("click", function () { if (state.timer) { clearInterval(state.timer); state.timer = null; } api.setHour(-1); });
      play.addEventListener("click", function () {
        if (state.timer) { clearInterval(state.timer); state.timer = null; return; }
        state.timer = setInterval(function () {
          var h = (state.hour + 1) % H; slider.value = String(h); api.setHour(h);
        }, 400);
      });
      box.appendChild(slider); box.appendChild(label); box.appendChild(play); box.appendChild(minb);
      L.DomEvent.disableClickPropagation(box); L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    tcl.addTo(map);
  }

  L.control.scale({imperial: false, maxWidth: 160}).addTo(map);

  // ---- notes
  var nc = L.control({position: "bottomleft"});
  nc.onAdd = function () {
    var box = el("details", "ws-box ws-notes");
    box.open = D.tiles.length > 0;  // the GCJ-02 warning matters once a basemap is shown
    box.appendChild(el("summary", null, T.notes));
    var ul = el("ul");
    D.notes.forEach(function (n) { ul.appendChild(el("li", null, n)); });
    box.appendChild(ul);
    L.DomEvent.disableClickPropagation(box); L.DomEvent.disableScrollPropagation(box);
    return box;
  };
  nc.addTo(map);

  drawLegend();
  // labels are centred by their width: centre them again once the embedded font is in (some browsers load it late)
  if (document.fonts && document.fonts.ready) {
    document.fonts.ready.then(function () {
      api.markers.settlements.forEach(function (p) { if (p.getTooltip()) { p.getTooltip().update(); } });
      api.fontsReady = true;
    });
  }
  api.buildMs = ((window.performance && performance.now) ? performance.now() : 0) - t0;
  api.ready = true;
  document.documentElement.setAttribute("data-ws-ready", "1");
}"""
