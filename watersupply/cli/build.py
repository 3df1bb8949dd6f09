"""``watersupply build``: build a network from GIS layers (GeoPackage, GeoJSON, Shapefile)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ._common import handle_errors

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("build")
@click.option("--pipes", "pipes", type=_FILE, required=True, help="Pipe lines (GeoPackage, GeoJSON or Shapefile).")
@click.option("--nodes", "nodes", type=_FILE, default=None, help="Node points (elevation, demand, population).")
@click.option("--facilities", "facilities", type=_FILE, default=None,
              help="Plant / reservoir / pump station points (kind, head_m, tank levels).")
@click.option("--settlements", "settlements", type=_FILE, default=None,
              help="Village / community polygons with population.")
@click.option("--dem", "dem", type=_FILE, default=None, help="DEM raster for node elevations (e.g. a GeoTIFF).")
@click.option("--crs", default=None, metavar="EPSG", help="CRS of layers that have none, e.g. EPSG:4545 or 4545.")
@click.option("--mapping", "mapping", type=_FILE, default=None,
              help="YAML file renaming your columns to ours, e.g. 'pipes: {diameter: DN}'.")
@click.option("--tolerance-m", "tolerance_m", type=float, default=1.0, show_default=True,
              help="Pipe ends this close (m) to a node or to each other are joined.")
@click.option("--fix", is_flag=True, help="Apply safe fixes (near misses, duplicates) and list them.")
@click.option("--split-crossings", is_flag=True, help="With --fix, put a node where pipes cross and split them.")
@click.option("-o", "--out", "out", type=_FILE, required=True, help="Network GeoPackage to write (.gpkg).")
@handle_errors
def command(pipes: Path, nodes: Path | None, facilities: Path | None, settlements: Path | None, dem: Path | None,
            crs: str | None, mapping: Path | None, tolerance_m: float, fix: bool, split_crossings: bool,
            out: Path) -> None:
    """Build a network from GIS layers; write the GeoPackage, the EPANET INP beside it and validation.csv.

    Pipe ends are snapped into nodes within --tolerance-m (nodes are created where
    ends meet without one); elevations come from --dem or the nodes' elevation.
    Every topology finding (dangling ends, near misses, crossings, disconnected
    parts, nodes without a source, implausible values) is listed in validation.csv.
    """
    from ..build import build_network, write_built

    if crs is not None and crs.strip().isdigit():
        crs = f"EPSG:{crs.strip()}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net, findings, fixes = build_network(pipes, nodes=nodes, facilities=facilities, settlements=settlements,
                                             dem=dem, crs=crs, mapping=mapping, tolerance_m=tolerance_m, fix=fix,
                                             split_crossings=split_crossings)
        files = write_built(net, out, findings=findings)
    for w in caught:
        if issubclass(w.category, UserWarning):
            click.echo(f"Warning: {w.message}", err=True)
    click.echo(f"{len(net['nodes'])} nodes, {len(net['pipes'])} pipes, "
               f"{len(net.get('facilities', [])) if net.get('facilities') is not None else 0} facilities, "
               f"{len(net['settlements'])} settlements")
    for line in fixes:
        click.echo(f"fixed: {line}")
    errors = int((findings["severity"] == "error").sum())
    warns = int((findings["severity"] == "warning").sum())
    if len(findings):
        counts = findings.groupby(["check", "severity"]).size()
        summary = ", ".join(f"{check} {sev} {n}" for (check, sev), n in counts.items())
        click.echo(f"findings: {errors} error(s), {warns} warning(s) ({summary}) — see {files['validation']}")
    else:
        click.echo("findings: none")
    for kind, path in files.items():
        click.echo(f"{kind}: {path}")
