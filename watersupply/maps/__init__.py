"""Service maps: the offline interactive HTML map and the printed PNG map of a run.

One entry writes them, :func:`render_service_map`; the modules below it each
own one concern, and import only downwards (no module imports this package
or :mod:`render`):

``render``
    :func:`render_service_map`, used by ``run``, ``map``, ``scenario`` and ``criticality``.
``html``, ``png``
    The interactive map (:func:`service_map`, :func:`write_map`) and the static
    one (:func:`static_map`, :func:`write_png`).
``payload``, ``assets``
    The HTML map's JSON data, and its page code (Leaflet and ``static/app.js``,
    ``static/app.css``, read as package files).
``overlays``
    :class:`ScenarioOverlay` (:func:`scenario_overlay`) and :class:`CriticalityOverlay`.
``style``
    Colours, legends, label and layer rules, validators shared by both maps.
``fonts``, ``coords``, ``i18n``
    The embedded CJK font, GCJ-02 conversion and district outlines, translations.
"""

from __future__ import annotations

from .assets import external_references, leaflet_assets
from .coords import bundled_district, gcj02_to_wgs84, read_district, wgs84_to_gcj02
from .fonts import FONT_STACK, WEB_FONT_FAMILY, cjk_font, cjk_font_file, font_face_css, page_characters
from .html import map_html, service_map, write_map
from .i18n import LANGS, text
from .overlays import CriticalityOverlay, Overlay, ScenarioOverlay, scenario_overlay
from .png import png_bytes, static_map, write_png
from .render import render_service_map
from .style import MAP_LAYERS, PIPE_COLOURINGS, TILES, is_georeferenced, settlement_status

__all__ = [
    "render_service_map",
    "ScenarioOverlay",
    "CriticalityOverlay",
    "Overlay",
    "scenario_overlay",
    "service_map",
    "map_html",
    "write_map",
    "static_map",
    "png_bytes",
    "write_png",
    "LANGS",
    "MAP_LAYERS",
    "PIPE_COLOURINGS",
    "TILES",
    "text",
    "settlement_status",
    "is_georeferenced",
    "bundled_district",
    "read_district",
    "gcj02_to_wgs84",
    "wgs84_to_gcj02",
    "cjk_font",
    "cjk_font_file",
    "font_face_css",
    "page_characters",
    "FONT_STACK",
    "WEB_FONT_FAMILY",
    "leaflet_assets",
    "external_references",
]
