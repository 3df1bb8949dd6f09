"""The interactive service map: one self-contained, offline HTML file (folium/Leaflet).

:func:`service_map` turns a run's GIS layers (nodes, pipes, facilities,
settlements, with their summary results as columns) into a Leaflet map;
:func:`write_map` writes it atomically. The map shows

- villages and communities coloured by the audit verdict (pass/warn/fail) when
  one exists, otherwise by their service level against the service head, with
  their names placed largest first and never on top of each other (a label that
  does not fit at the current zoom is left out and shown on hover);
- mains and branches, coloured by diameter (width by class), or — switchable in
  the map — by minimum pressure, maximum velocity or criticality when the pipes
  carry those columns;
- the plant, pump stations and reservoirs with distinct inline-SVG icons;
- demand nodes by minimum pressure, with a time slider that recolours them hour
  by hour from the simulated pressures;
- an overlay: what a scenario changed against the baseline, or each pipe's
  criticality (:mod:`watersupply.maps.overlays`);
- optionally the district outline, converted from GCJ-02 to WGS84.

The file works offline: Leaflet and the map's app (``static/app.js``,
``static/app.css``) are inlined (:mod:`watersupply.maps.assets`), no CDN and
no image is used. Chinese text does not depend on the viewer's fonts: a subset
of Noto Sans CJK SC is embedded (:func:`watersupply.maps.fonts.font_face_css`).
All user data is embedded once as JSON (with ``<`` ``>`` ``&`` escaped) and put
on the page with ``textContent`` only, so names such as ``<img src=x
onerror=...>`` show as text.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element, MacroElement

from .._errors import ConfigError
from ..io import write_text
from ..standards import thresholds
from .assets import app_assets, external_references, leaflet_assets
from .coords import WEB_CRS
from .fonts import font_face_css, page_characters
from .i18n import TEXT, check_lang, text
from .overlays import CriticalityOverlay, Overlay, check_overlay, with_criticality
from .payload import (
    bounds,
    facility_data,
    json_for_html,
    node_data,
    pipe_data,
    poly_latlng,
    settlement_data,
    tile_layers,
    web_geoms,
    zone_data,
)
from .style import (
    CHANGE_COLOUR,
    FACILITY_ICONS,
    PIPE_COLOURINGS,
    TILES,
    check_layers,
    is_schematic,
    layers_to_show,
    title_text,
)

__all__ = ["service_map", "map_html", "write_map", "SCHEMATIC_WEB_CRS"]

log = logging.getLogger(__name__)

#: Schematic drawings (a local CRS, not georeferenced) are placed at 0°N 0°E by this
#: transverse Mercator so that Leaflet's scale bar stays true (scale factor 1 there).
SCHEMATIC_WEB_CRS = "+proj=tmerc +lat_0=0 +lon_0=0 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
_FONT_SLOT = '<style id="ws-font"></style>'  # filled by map_html; user text can never contain "<"
_DATA_ID = "ws-data"


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
        figure.script.add_child(_Raw(f"wsServiceMap({self._parent.get_name()}, {json.dumps(self.data_id)});"),
                                name="ws_app")


class _Raw(Element):
    """Text put on the page as is (not run through Jinja)."""

    def __init__(self, content: str) -> None:
        super().__init__()
        self._content = content

    def render(self, **kwargs: Any) -> str:
        return self._content


def service_map(layers: Mapping[str, gpd.GeoDataFrame], *, title: str | tuple[str, str] = "", lang: str = "both",
                pressure: pd.DataFrame | None = None, include: Iterable[str] | None = None,
                pipe_colour_by: str | None = None, audit: pd.DataFrame | None = None,
                overlay: Overlay | None = None, tank_level: pd.DataFrame | None = None,
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
        Layers to show, from :data:`~watersupply.maps.style.MAP_LAYERS` (default: all available).
    pipe_colour_by
        Initial pipe colouring, one of :data:`~watersupply.maps.style.PIPE_COLOURINGS`; the others that
        have data can be switched to in the map. Falls back to ``class`` with a
        warning when the column is missing. None: ``criticality`` with a
        criticality overlay, else ``class``.
    audit
        Audit verdicts (``pass``/``warn``/``fail``) by settlement id, column
        ``verdict`` (and optionally ``reason``); a ``verdict`` column on the
        settlements layer is used when this is None.
    overlay
        A :class:`~watersupply.maps.overlays.ScenarioOverlay` (what a scenario
        changed, see :func:`~watersupply.maps.overlays.scenario_overlay`) or a
        :class:`~watersupply.maps.overlays.CriticalityOverlay` (people affected
        per pipe, shown as the ``criticality`` colouring).
    tank_level
        Simulated reservoir levels (hours × reservoir node ids) for the popups.
    district
        District outline (any CRS; see :func:`~watersupply.maps.coords.read_district`).
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
        A layer without CRS, or pressure/overlay/audit ids not in the layers.

    Examples
    --------
    >>> from watersupply.baseline import run_baseline, result_layers
    >>> from watersupply.io import get_path, read_network
    >>> run = run_baseline(read_network(get_path("tonghui")), duration_h=2, age=False)  # doctest: +SKIP
    >>> m = service_map(result_layers(run), lang="en")  # doctest: +SKIP
    """
    t = t or thresholds()
    check_lang(lang)
    if pipe_colour_by is None:
        pipe_colour_by = "criticality" if isinstance(overlay, CriticalityOverlay) else "class"
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
    lay = check_layers(layers)
    schematic = is_schematic(lay)
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
    show = layers_to_show(lay, district, include)
    dff = check_overlay(overlay, lay)
    if isinstance(overlay, CriticalityOverlay) and "pipes" in lay:
        lay = with_criticality(lay, overlay)
    heading = title_text(title, lang)

    payload: dict[str, Any] = {"lang": lang, "title": heading, "legends": {}}
    txt = {k: text(k, lang) for k in ("settlements", "mains", "branches", "facilities", "nodes", "district",
                                       "changes", "time", "min_over_run", "min_btn", "play", "pipe_colour",
                                       "legend", "pressure_now", "basemap_none", "notes", "plant",
                                       "pump_station", "reservoir", "changed_pipe", "affected_settlement",
                                       "note_labels")}
    txt["hour"] = list(TEXT["hour"]) if lang == "both" else TEXT["hour"][0 if lang == "zh" else 1]
    txt["modes"] = {m: text(f"by_{m}", lang) for m in PIPE_COLOURINGS}
    payload["text"] = txt
    extent = []
    if "settlements" in show:
        st = lay["settlements"]
        payload["settlements"], payload["legends"]["settlements"] = settlement_data(
            st, lang=lang, t=t, audit=audit, diff=dff, tol_m=simplify_m)
        extent.append(st.geometry.to_crs(WEB_CRS))
    if "zones" in show:
        zn = lay["zones"]
        payload["zones"] = zone_data(zn, lang=lang, tol_m=simplify_m)
        payload["text"]["zones"] = text("zones", lang)
        n_designed = int(sum(payload["zones"]["designed"]))
        payload["text"]["zones_many"] = text("zones_many", lang, n=n_designed)
        extent.append(zn.geometry.to_crs(WEB_CRS))
    if "pipes" in show:
        pp = lay["pipes"]
        payload["pipes"] = pipe_data(pp, lay.get("nodes"), lang=lang, t=t, diff=dff, tol_m=simplify_m,
                                      colour_by=pipe_colour_by)
        extent.append(pp.geometry.to_crs(WEB_CRS))
    elif pipe_colour_by != "class":
        log.info("pipe_colour_by=%r ignored: pipes are not shown", pipe_colour_by)
    if "facilities" in show:
        payload["facilities"] = facility_data(lay["facilities"], lang=lang, tank_level=tank_level,
                                               pumps=lay.get("pumps"))
        payload["icons"] = FACILITY_ICONS
        payload["legends"]["facilities"] = {"title": text("facilities", lang), "shape": "icon",
                                            "items": [[k, text(k, lang)] for k in FACILITY_ICONS]}
        extent.append(lay["facilities"].geometry.to_crs(WEB_CRS))
    if "nodes" in show:
        nd, lg, series = node_data(lay["nodes"], lang=lang, t=t, pressure=pressure, settlements=lay.get("settlements"))
        payload["nodes"], payload["legends"]["nodes"] = nd, lg
        if series is not None:
            payload["pressure"] = series
        extent.append(lay["nodes"].geometry.to_crs(WEB_CRS))
    notes = [text("note_schematic" if schematic else "note_crs", lang),
             text("note_offline", lang) if tiles == "none" else None]
    if "district" in show:
        dist = gpd.GeoDataFrame(geometry=web_geoms(district, simplify_m * 10), crs=WEB_CRS)
        payload["district"] = {"geom": [poly_latlng(g) for g in dist.geometry]}
        notes.append(text("note_district", lang))
        if not extent:
            extent.append(dist.geometry)
    if dff is not None:
        payload["changes"] = {"label": dff.label}
        payload["legends"]["changes"] = {"title": text("changes", lang) + (f": {dff.label}" if dff.label else ""),
                                         "shape": "line", "items": [[CHANGE_COLOUR, text("changed_pipe", lang)],
                                                                    [CHANGE_COLOUR, text("affected_settlement", lang)]]}
    if "pressure" in payload:
        notes.append(text("note_slider", lang))
    payload["tiles"] = tile_layers(tiles, tianditu_key, lang)
    if tiles == "tianditu" and not tianditu_key:
        notes.append(text("note_tianditu_key", lang))
    notes.append(text("note_gcj", lang))
    payload["notes"] = [n for n in notes if n]
    payload["bounds"] = bounds(extent)
    payload["change_colour"] = CHANGE_COLOUR

    (s, w), (n, e) = payload["bounds"]
    m = folium.Map(location=[(s + n) / 2.0, (w + e) / 2.0], zoom_start=13, tiles=None, control_scale=False,
                   prefer_canvas=False)
    m._id = "service"
    m.default_js = []  # no CDN scripts (jquery, bootstrap, leaflet, awesome-markers)
    m.default_css = []
    js, css = leaflet_assets()
    app_js, app_css = app_assets()
    root = m.get_root()
    root._id = "page"
    head = [f"<title>{html.escape(heading or text('nodes', lang))}</title>", _FONT_SLOT,
            f"<style>{css}</style>", f"<style>{app_css}</style>", f"<script>{js}</script>",
            f"<script>{app_js}</script>"]
    root.header.add_child(_Raw("\n".join(head)), name="ws_head", index=0)
    _ServiceLayers(json_for_html(payload), _DATA_ID).add_to(m)
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


