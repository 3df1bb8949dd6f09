"""Static PNG service maps for printed reports (matplotlib), with north arrow, scale bar and legend.

The same layers and colours as the interactive map (:mod:`watersupply.maps.html`):
villages and communities by audit verdict or service level, pipes by diameter
and class (or minimum pressure, maximum velocity, criticality), facilities,
demand nodes by minimum pressure, and an overlay (what a scenario changed, or
criticality). Maps are drawn in the layers' projected CRS (metres) so the scale
bar is true; the north arrow points to true north (grid convergence included).
Settlement names are placed largest settlement first; a name that would overlap
one already placed is moved beside its settlement or, failing that, left out
(the footnote says how many).

Chinese labels use Noto Sans CJK SC from the installed ``mplfonts`` package
(:mod:`watersupply.maps.fonts`); no system font is relied on.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib.patheffects as pe
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from pyproj import Transformer

from .._errors import ConfigError
from ..io import atomic_path
from ..standards import thresholds
from .fonts import cjk_rc
from .i18n import check_lang, text
from .overlays import CriticalityOverlay, Overlay, check_overlay, with_criticality
from .style import (
    CHANGE_COLOUR,
    FACILITY_COLOURS,
    PIPE_COLOURINGS,
    check_layers,
    classify,
    display_names,
    is_georeferenced,
    label_order,
    layers_to_show,
    pipe_colourings,
    pressure_legend,
    settlement_status,
    title_text,
)

__all__ = ["static_map", "write_png", "png_bytes", "place_labels"]

log = logging.getLogger(__name__)

#: More designed pressure zones than this: the legend counts them instead of naming them (as on the web map).
ZONES_LISTED = 8
_FACILITY_MARKERS = {"plant": ("s", 110), "pump_station": ("^", 90), "reservoir": ("o", 90)}


def _wrap(label: str, width: int = 44) -> str:
    """Break a long legend label at spaces (CJK characters count double)."""
    def w(s: str) -> int:
        return sum(2 if "\u2e80" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" else 1 for ch in s)

    if w(label) <= width or " " not in label:
        return label
    both = re.match(r"^(.*[\u2e80-\u9fff\uff00-\uffef]\S*)\s+([^\u2e80-\u9fff\uff00-\uffef]+)$", label)
    if both:  # Chinese, then English on its own line
        return "\n".join(_wrap(part, width) for part in both.groups())
    lines, cur = [], ""
    for word in label.split(" "):
        if cur and w(cur) + 1 + w(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    lines.append(cur)
    return "\n".join(lines)


def _nice_length(span_m: float) -> float:
    target = span_m / 5.0
    k = 10 ** math.floor(math.log10(target))
    return max(m * k for m in (1, 2, 5) if m * k <= target) if target >= 1 else 1.0


def _north_angle(ax: Any, crs: Any) -> float:
    """Angle (radians, counter-clockwise from the +y axis) of true north at the map centre."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lon, lat = to_geo.transform(cx, cy)
    nx, ny = to_map.transform(lon, lat + 0.01)
    return math.atan2(-(nx - cx), ny - cy)


def _north_arrow(ax: Any, crs: Any, label: str) -> None:
    ang = _north_angle(ax, crs)
    x, y, length = 0.06, 0.86, 0.08
    dx, dy = -math.sin(ang) * length, math.cos(ang) * length
    ax.annotate("", xy=(x + dx, y + dy), xytext=(x, y), xycoords="axes fraction",
                arrowprops=dict(facecolor="black", edgecolor="black", width=4, headwidth=12, headlength=12),
                gid="north-arrow")
    ax.text(x + dx * 1.35, y + dy * 1.35, label, transform=ax.transAxes, ha="center", va="center",
            fontsize=12, gid="north-arrow-label")


def _scale_bar(ax: Any) -> float:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    h = (y1 - y0) * 0.008
    bx, by = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.04
    seg = length / 2.0
    for i in range(2):
        ax.add_patch(Rectangle((bx + i * seg, by), seg, h, facecolor="black" if i == 0 else "white",
                               edgecolor="black", lw=0.8, zorder=20, gid="scale-bar"))
    unit, div = ("km", 1000.0) if length >= 1000 else ("m", 1.0)
    for v in (0.0, seg, length):
        ax.text(bx + v, by + h * 1.8, f"{v / div:g}", ha="center", va="bottom", fontsize=8, zorder=20)
    ax.text(bx + length + (x1 - x0) * 0.01, by + h / 2, unit, ha="left", va="center", fontsize=8, zorder=20)
    return length


def _project(layers: Mapping[str, gpd.GeoDataFrame]) -> tuple[dict[str, gpd.GeoDataFrame], Any]:
    first = next(iter(layers.values()))
    crs = first.crs
    if not is_georeferenced(crs):  # a schematic drawing in local metres: draw it as it is
        return dict(layers), crs
    if crs.is_geographic:
        crs = first.estimate_utm_crs()
    return {k: v.to_crs(crs) for k, v in layers.items()}, crs


#: Where a settlement name may go, tried in turn (offset in points, alignment): on its
#: representative point, then above, below, right and left of it.
_LABEL_SPOTS = ((0, 0, "center", "center"), (0, 7, "center", "bottom"), (0, -7, "center", "top"),
                (7, 0, "left", "center"), (-7, 0, "right", "center"))


def place_labels(ax: Any, settlements: gpd.GeoDataFrame, names: list[str], *, fontsize: float = 8.5) -> int:
    """Write settlement names on `ax` so that no two overlap; return how many were left out.

    Names are placed in :func:`~watersupply.maps.style.label_order` (largest
    settlement first), each at the first of :data:`_LABEL_SPOTS` where it
    overlaps no name already placed and stays inside the axes. Call it after
    the axes limits are set.
    """
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    ax.apply_aspect()
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    omitted = 0
    halo = [pe.withStroke(linewidth=2.5, foreground="white")]
    for i in label_order(settlements):
        geom = settlements.geometry.iloc[i]
        if geom is None or geom.is_empty:
            continue
        p = geom.representative_point()
        for dx, dy, ha, va in _LABEL_SPOTS:
            txt = ax.annotate(names[i], (p.x, p.y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                              fontsize=fontsize, zorder=8, path_effects=halo, gid="settlement-label")
            box = txt.get_window_extent(renderer).expanded(1.05, 1.3)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            txt.remove()
        else:
            omitted += 1
    if omitted:
        log.info("%d of %d settlement names left out: they would overlap others", omitted, len(settlements))
    return omitted


def static_map(layers: Mapping[str, gpd.GeoDataFrame], *, title: str | tuple[str, str] = "", lang: str = "both",
               include: Iterable[str] | None = None, pipe_colour_by: str | None = None,
               audit: pd.DataFrame | None = None, overlay: Overlay | None = None,
               district: gpd.GeoDataFrame | None = None, t: Mapping[str, float] | None = None,
               figsize: tuple[float, float] = (11.69, 8.27), label_settlements: bool = True) -> Figure:
    """Draw the service map as a matplotlib Figure (A4 landscape by default).

    Parameters
    ----------
    layers
        GeoDataFrames by name, as for :func:`watersupply.maps.html.service_map`.
    title
        Title, or ``(zh, en)`` chosen by `lang`.
    lang
        ``zh``, ``en`` or ``both``.
    include
        Layers to draw, from :data:`watersupply.maps.style.MAP_LAYERS` (default: all available).
    pipe_colour_by
        ``class`` (diameter, width by class), ``min_pressure``, ``velocity`` or
        ``criticality`` (falls back to ``class`` when the column is missing).
        None: ``criticality`` with a criticality overlay, else ``class``.
    audit, overlay
        As for :func:`watersupply.maps.html.service_map`.
    district
        District outline (any CRS), drawn behind the network.
    t
        Thresholds.
    figsize
        Inches.
    label_settlements
        Write settlement names on the map (never on top of each other: see
        :func:`~watersupply.maps.style.label_order`).

    Returns
    -------
    matplotlib.figure.Figure
        Write it with :func:`write_png`.
    """
    t = t or thresholds()
    check_lang(lang)
    if pipe_colour_by is None:
        pipe_colour_by = "criticality" if isinstance(overlay, CriticalityOverlay) else "class"
    if pipe_colour_by not in PIPE_COLOURINGS:
        raise ConfigError(f"pipe_colour_by must be one of {', '.join(PIPE_COLOURINGS)}, got {pipe_colour_by!r}")
    lay = check_layers(layers)
    show = layers_to_show(lay, district, include)
    dff = check_overlay(overlay, lay)
    if isinstance(overlay, CriticalityOverlay) and "pipes" in lay:
        lay = with_criticality(lay, overlay)
    proj, crs = _project({k: v for k, v in lay.items()
                          if k in ("settlements", "pipes", "facilities", "nodes", "pumps", "zones")})
    heading = title_text(title, lang)

    with cjk_rc():
        fig = Figure(figsize=figsize, dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.02, 0.06, 0.66, 0.86))
        ax.set_aspect("equal")
        ax.set_axis_off()
        handles: list[Any] = []
        heads: list[int] = []

        def header(label: str) -> None:
            heads.append(len(handles))
            handles.append(Line2D([], [], linestyle="none", marker="", label=label))

        extent = pd.concat([proj[k].geometry for k in show if k in proj]).total_bounds
        if "district" in show and is_georeferenced(crs):
            district.to_crs(crs).boundary.plot(ax=ax, color="#636363", linewidth=1.2, linestyle="--", zorder=1)
        if "settlements" in show:
            st = proj["settlements"]
            status, lg = settlement_status(st, audit=audit, t=t, lang=lang)
            colours = [lg["items"][lg["keys"].index(s)][0] for s in status]
            st.plot(ax=ax, color=colours, alpha=0.35, edgecolor="#444444", linewidth=0.8, zorder=2)
            header(lg["title"])
            used = set(status)
            for key, (c, lab) in zip(lg["keys"], lg["items"]):
                if key in used:
                    handles.append(Patch(facecolor=c, alpha=0.5, edgecolor="#444444", label=lab))
        if "zones" in show:  # pressure zones (watersupply.zones): dashed outlines, designed ones in purple
            zn = proj["zones"]
            designed = zn["designed"].astype(str).str.lower().isin(("true", "1")) if "designed" in zn.columns \
                else pd.Series(False, index=zn.index)
            zn.boundary.plot(ax=ax, color=np.where(designed, "#6a3d9a", "#807dba"), linewidth=1.0, linestyle="--",
                             zorder=2.5)
            header(text("zones", lang))
            names = list(map(str, zn.loc[designed, "zone"]))
            label = (text("zones_count", lang, n=len(names)) if len(names) > ZONES_LISTED
                     else ", ".join(names) if names else "–")
            handles.append(Line2D([], [], color="#6a3d9a", linewidth=1.2, linestyle="--", label=label))
        if "pipes" in show:
            pp = proj["pipes"]
            modes = pipe_colourings(pp, lay.get("nodes"), t, lang)
            if pipe_colour_by not in modes:
                warnings.warn(f"pipe_colour_by={pipe_colour_by!r}: the pipes have no such results; colouring "
                              "by diameter and class instead", stacklevel=2)
                pipe_colour_by = "class"
            mode = modes[pipe_colour_by]
            cls = pp["class"].astype(str).to_numpy() if "class" in pp.columns else np.full(len(pp), "main")
            dn = pd.to_numeric(pp.get("diameter_mm", pd.Series(100.0, index=pp.index)), errors="coerce").fillna(100.0)
            segs, cols, widths = [], [], []
            order = np.argsort(cls == "main", kind="stable")  # branches first, mains on top
            for i in order:
                g = pp.geometry.iloc[i]
                if g is None or g.is_empty:
                    continue
                parts = g.geoms if g.geom_type == "MultiLineString" else [g]
                for part in parts:
                    segs.append(np.asarray(part.coords)[:, :2])
                    cols.append(mode["legend"]["items"][mode["idx"][i]][0])
                    widths.append(min(1.0 + dn.iloc[i] / 200.0, 3.2) if cls[i] == "main" else 0.45)
            ax.add_collection(LineCollection(segs, colors=cols, linewidths=widths, zorder=3, capstyle="round"))
            header(mode["legend"]["title"])
            used_idx = set(mode["idx"])
            for k, (c, lab) in enumerate(mode["legend"]["items"]):
                if k in used_idx:
                    handles.append(Line2D([], [], color=c, linewidth=2.2, label=lab))
            handles.append(Line2D([], [], color="#555555", linewidth=2.6, label=text("mains", lang)))
            handles.append(Line2D([], [], color="#555555", linewidth=0.6, label=text("branches", lang)))
        if dff is not None:
            any_change = False
            if len(dff.pipes) and "pipes" in proj:
                ch = proj["pipes"][proj["pipes"]["id"].astype(str).isin(dff.pipes.index)]
                ch.plot(ax=ax, color=CHANGE_COLOUR, linewidth=3.0, linestyle="--", zorder=6)
                any_change = True
            if len(dff.settlements) and "settlements" in proj:
                ch = proj["settlements"][proj["settlements"]["id"].astype(str).isin(dff.settlements.index)]
                ch.boundary.plot(ax=ax, color=CHANGE_COLOUR, linewidth=2.5, linestyle="--", zorder=6)
                any_change = True
            if any_change:
                header(text("changes", lang) + (f": {dff.label}" if dff.label else ""))
                handles.append(Line2D([], [], color=CHANGE_COLOUR, linewidth=2.5, linestyle="--",
                                      label=text("changed_pipe", lang) + " / " + text("affected_settlement", lang)))
        if "nodes" in show:
            nd = proj["nodes"]
            dem = pd.to_numeric(nd.get("base_demand_m3d", pd.Series(0.0, index=nd.index)), errors="coerce").fillna(0)
            kind = nd.get("kind", pd.Series("junction", index=nd.index))
            mask = ((kind == "junction") & (dem > 0)).to_numpy()
            if not mask.any():
                mask = (kind == "junction").to_numpy()
            sub = nd[mask]
            lg = pressure_legend(t, lang=lang)
            minp = pd.to_numeric(sub.get("min_pressure_m", pd.Series(np.nan, index=sub.index)), errors="coerce")
            idx = classify(minp.to_numpy(dtype=float), lg)
            size = float(np.clip(6000.0 / max(len(sub), 1), 5.0, 30.0))
            ax.scatter(sub.geometry.x, sub.geometry.y, s=size, c=[lg["items"][i][0] for i in idx], linewidths=0.15,
                       edgecolors="#333333", zorder=4)
            header(lg["title"])
            for k, (c, lab) in enumerate(lg["items"]):
                if k in set(idx):
                    handles.append(Line2D([], [], linestyle="none", marker="o", markersize=5, markerfacecolor=c,
                                          markeredgecolor="#333333", markeredgewidth=0.3, label=lab))
        if "facilities" in show:
            fac = proj["facilities"]
            header(text("facilities", lang))
            for kind, (marker, size) in _FACILITY_MARKERS.items():
                sub = fac[fac["kind"] == kind] if "kind" in fac.columns else fac.iloc[0:0]
                if not len(sub):
                    continue
                ax.scatter(sub.geometry.x, sub.geometry.y, marker=marker, s=size, c=FACILITY_COLOURS[kind],
                           edgecolors="white", linewidths=1.2, zorder=7)
                handles.append(Line2D([], [], linestyle="none", marker=marker, markersize=9,
                                      markerfacecolor=FACILITY_COLOURS[kind], markeredgecolor="white",
                                      label=text(kind, lang)))
        pad_x, pad_y = (extent[2] - extent[0]) * 0.04 + 50, (extent[3] - extent[1]) * 0.04 + 50
        ax.set_xlim(extent[0] - pad_x, extent[2] + pad_x)
        ax.set_ylim(extent[1] - pad_y, extent[3] + pad_y)
        omitted = 0
        if label_settlements and "settlements" in show:
            omitted = place_labels(ax, proj["settlements"], display_names(proj["settlements"], lang))
        if is_georeferenced(crs):
            _north_arrow(ax, crs, text("north", lang) if lang != "both" else "N 北")
        _scale_bar(ax)
        for h in handles:
            h.set_label(_wrap(h.get_label()))
        leg = fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.69, 0.93), frameon=True,
                         fontsize=7.5, title=text("legend", lang), title_fontsize=10, handlelength=2.2,
                         borderaxespad=0.2, labelspacing=0.35)
        for i, txt in enumerate(leg.get_texts()):
            if i in heads:
                txt.set_fontsize(9)
                txt.set_color("#000000")
        if heading:
            fig.text(0.02, 0.965, heading, fontsize=15, va="top", ha="left")
        crs_name = getattr(crs, "name", str(crs))
        foot = f"{text('coordinates', lang)}: {crs_name}" if is_georeferenced(crs) else text("note_schematic", lang)
        if "district" in show:
            foot += " · " + text("note_district", lang)
        if omitted:
            foot += " · " + text("labels_omitted", lang, n=omitted)
        fig.text(0.02, 0.02, foot, fontsize=7, color="#444444", ha="left", va="bottom")
    return fig


def png_bytes(fig: Figure, *, dpi: int = 150) -> bytes:
    """The figure as PNG bytes (no file written)."""
    buf = io.BytesIO()
    with cjk_rc():
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white", metadata={"Software": "watersupply"})
    return buf.getvalue()


def write_png(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Write the figure as a PNG file, atomically."""
    data = png_bytes(fig, dpi=dpi)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
