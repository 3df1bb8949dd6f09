"""File conversion between the formats a network comes in: EPANET INP, the project's GeoPackage and WNTR's GIS layers.

:func:`convert_file` picks the reader and writer from the file extensions (and, for
a folder or GeoPackage of ``junctions``/``pipes`` layers, WNTR's ``to_gis`` schema).
It sits above :mod:`watersupply.convert` (INP <-> project network) and
:mod:`watersupply.gis_schema` (WNTR's layers, also read by ``watersupply build``), which both stay free of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd

from ._errors import NetworkDataError
from .convert import _crs, read_inp
from .gis_schema import build_from_layers, write_layers

__all__ = ["convert_file", "is_wntr_gis"]

_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")


def is_wntr_gis(path: str | os.PathLike) -> bool:
    """True for a folder of WNTR layer files or a GeoPackage with WNTR's layer names (and no ``nodes``)."""
    import pyogrio

    p = Path(path)
    if p.is_dir():
        return any(f.suffix.lower() in _SUFFIXES and f.stem.lower().endswith(("junctions", "pipes"))
                   for f in p.iterdir())
    if p.suffix.lower() == ".gpkg" and p.is_file():
        try:
            names = {str(n) for n, _ in pyogrio.list_layers(p)}
        except Exception:  # unreadable: the reader reports it
            return False
        return "nodes" not in names and bool(names & {"junctions", "pipes"})
    return False


def convert_file(src: str | os.PathLike, out: str | os.PathLike, *, crs: Any = None,
                 units: str | None = None, inp_options: str | os.PathLike | None = None,
                 schema: str = "project") -> Path:
    """Convert a network file by extension: ``.inp`` -> ``.gpkg`` or ``.gpkg`` -> ``.inp``.

    Parameters
    ----------
    src
        An EPANET INP file, a network GeoPackage (from a conversion, ``watersupply build``
        or the bundled model), or WNTR's GIS layers (``wntr.network.to_gis``: a folder of
        ``*junctions.geojson``, ``*pipes.geojson`` ... or a GeoPackage with those layers).
    out
        The file to write (atomically; nothing is written on error): ``.gpkg`` or ``.inp``.
    crs
        For an INP: the CRS of its coordinates (as :func:`read_inp`). For a GeoPackage:
        the CRS the INP's coordinates are written in (reprojected).
    units
        INP flow units (LPS, GPM, ...); default the model's own (LPS for a project network).
    inp_options
        For WNTR GIS layers: the INP or WNTR JSON that supplies patterns, curves,
        controls and options.
    schema
        Layout of a GeoPackage written: ``"project"`` (:mod:`watersupply.schema`) or
        ``"wntr"`` (WNTR's ``to_gis`` layers, for QGIS and back).

    Returns
    -------
    pathlib.Path
        `out`.

    Notes
    -----
    A GeoPackage that carries an EPANET model (converted from an INP) is written as
    exactly that model; a project network (from ``build``) as the model the analyses
    solve (:func:`watersupply.model.to_wntr`).
    """
    from .io import read_network, write_network
    from .model import keep_as_is, to_wntr, write_inp

    s, o = Path(src), Path(out)
    if schema not in ("project", "wntr"):
        raise NetworkDataError(f"schema must be 'project' or 'wntr', got {schema!r}")
    kinds = {".inp": "inp", ".gpkg": "gpkg"}
    ks = "wntr" if is_wntr_gis(s) else kinds.get(s.suffix.lower())
    ko = kinds.get(o.suffix.lower())
    if ks is None:
        raise NetworkDataError(f"{s}: cannot tell the format from the extension {s.suffix!r}; give a .inp or .gpkg "
                               "file, or a folder of WNTR GIS layers")
    if ko is None or (ko == ks and schema == "project"):
        want = ".gpkg" if ks == "inp" else ".inp"
        raise NetworkDataError(f"{o}: the output of a {s.suffix or 'folder'} input must be a {want} file")
    if inp_options is not None and ks != "wntr":
        raise NetworkDataError("--inp-options applies to WNTR GIS layers (a folder or GeoPackage of junctions, "
                               "pipes, ...); an INP or project GeoPackage carries its own options")
    if schema == "wntr" and ko != "gpkg":
        raise NetworkDataError(f"{o}: --schema wntr writes a GeoPackage; give a .gpkg output")
    if ks == "inp":
        if units is not None:
            raise NetworkDataError("--units applies to writing an INP file, not a GeoPackage")
        net = read_inp(s, crs=crs)
    elif ks == "wntr":
        net, _findings, _fixes = build_from_layers(s, inp_options=inp_options, crs=crs)
    else:
        net = read_network(s)
        if crs is not None:
            want_crs = _crs(crs)
            net = {k: (v.to_crs(want_crs) if isinstance(v, gpd.GeoDataFrame) else v) for k, v in net.items()}
    if ko == "gpkg" and schema == "project":
        if units is not None:
            raise NetworkDataError("--units applies to writing an INP file, not a GeoPackage")
        return write_network(net, o)
    if units is not None:
        from wntr.epanet.util import FlowUnits
        if units.upper() not in FlowUnits.__members__:
            raise NetworkDataError(f"unknown INP flow units {units!r}; use one of {', '.join(FlowUnits.__members__)}")
        units = units.upper()
    try:
        wn = to_wntr(keep_as_is(net))
    except NetworkDataError as exc:
        raise NetworkDataError(f"{s}: {exc}") from None
    if schema == "wntr":
        return write_layers(wn, o, crs=net["nodes"].crs)
    return write_inp(wn, o, units=units)
