"""The one entry that writes a service map: the offline HTML page and, optionally, the PNG.

Every command that makes a map — ``run``, ``map``, ``scenario``, ``criticality`` —
calls :func:`render_service_map`; what differs between them is data (layers,
hourly pressure, audit verdicts) and an overlay, never the call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from .html import service_map, write_map
from .overlays import Overlay
from .png import static_map, write_png

__all__ = ["render_service_map"]


def render_service_map(layers: Mapping[str, gpd.GeoDataFrame], *, out_html: str | os.PathLike,
                       title: str | tuple[str, str] = "", lang: str = "both",
                       pressure: pd.DataFrame | None = None, tank_level: pd.DataFrame | None = None,
                       audit: pd.DataFrame | None = None, overlay: Overlay | None = None,
                       include: Iterable[str] | None = None, pipe_colour_by: str | None = None,
                       district: gpd.GeoDataFrame | None = None, tiles: str = "none",
                       tianditu_key: str | None = None, t: Mapping[str, float] | None = None,
                       out_png: str | os.PathLike | None = None) -> Path:
    """Write the service map of a run: an offline HTML page, and a PNG when `out_png` is given.

    Both files are built before either is written, and each is written
    atomically, so a bad option leaves no file behind.

    Parameters
    ----------
    layers
        The run's GIS layers with results as columns (``nodes``, ``pipes``,
        ``facilities``, ``settlements``, ``pumps``), usually
        :func:`watersupply.baseline.result_layers`.
    out_html
        The HTML file to write.
    title
        Title, or ``(zh, en)`` chosen by `lang`.
    lang
        ``zh``, ``en`` or ``both``.
    pressure
        Hourly pressure (m), hours × demand node ids, for the time slider.
    tank_level
        Hourly reservoir levels (m), hours × reservoir node ids, for the popups.
    audit
        Audit verdicts by settlement id (column ``verdict``).
    overlay
        A :class:`~watersupply.maps.overlays.ScenarioOverlay` or
        :class:`~watersupply.maps.overlays.CriticalityOverlay`.
    include
        Layers to show (default: all available), from
        :data:`~watersupply.maps.style.MAP_LAYERS`.
    pipe_colour_by
        Initial pipe colouring; None: ``criticality`` with a criticality
        overlay, else ``class``.
    district
        District outline (see :func:`~watersupply.maps.coords.bundled_district`).
    tiles, tianditu_key
        Basemap of the HTML map (``none`` by default: offline).
    t
        Thresholds (:func:`watersupply.standards.thresholds`).
    out_png
        Also write the static PNG map here.

    Returns
    -------
    Path
        The HTML file.

    Raises
    ------
    ConfigError
        An unknown option value.
    NetworkDataError
        A layer without CRS or id, or ids in `pressure`, `audit` or `overlay`
        that are not in the layers.

    Examples
    --------
    >>> from watersupply.baseline import result_layers, run_baseline
    >>> run = run_baseline(net, duration_h=2)  # doctest: +SKIP
    >>> render_service_map(result_layers(run), out_html="out/map.html", lang="en")  # doctest: +SKIP
    PosixPath('out/map.html')
    """
    m = service_map(layers, title=title, lang=lang, pressure=pressure, include=include,
                    pipe_colour_by=pipe_colour_by, audit=audit, overlay=overlay, tank_level=tank_level,
                    district=district, tiles=tiles, tianditu_key=tianditu_key, t=t)
    fig = None
    if out_png is not None:
        fig = static_map(layers, title=title, lang=lang, include=include, pipe_colour_by=pipe_colour_by,
                         audit=audit, overlay=overlay, district=district, t=t)
    path = write_map(m, out_html)
    if fig is not None:
        write_png(fig, out_png)
    return path
