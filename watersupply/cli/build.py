"""``watersupply build``: build a network from GIS layers (GeoPackage, GeoJSON, Shapefile)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ._common import handle_errors

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("build")
@click.option("--pipes", "pipes", type=_FILE, default=None, help="Pipe lines (GeoPackage, GeoJSON or Shapefile).")
@click.option("--layers", "layers", type=click.Path(path_type=Path), default=None,
              help="WNTR's GIS layers (wntr.network.to_gis): a folder or GeoPackage of junctions, tanks, "
                   "reservoirs, pipes, pumps, valves.")
@click.option("--tanks", "tanks", type=_FILE, default=None, help="WNTR tanks layer.")
@click.option("--reservoirs", "reservoirs", type=_FILE, default=None, help="WNTR reservoirs layer.")
@click.option("--pumps", "pumps", type=_FILE, default=None, help="WNTR pumps layer.")
@click.option("--valves", "valves", type=_FILE, default=None, help="WNTR valves layer.")
@click.option("--inp-options", "inp_options", type=_FILE, default=None,
              help="EPANET INP or WNTR JSON holding the options, patterns, curves, controls of WNTR layers.")
@click.option("--layer-mapping", "layer_mapping", default=None, metavar="NAME|YAML",
              help="Layer set of a QGIS plug-in: a shipped mapping (gusnet) or a YAML file like it.")
@click.option("--nodes", "nodes", type=_FILE, default=None,
              help="Node points (elevation, demand, population); with WNTR layers, the junctions.")
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
def command(pipes: Path | None, layers: Path | None, tanks: Path | None, reservoirs: Path | None,
            pumps: Path | None, valves: Path | None, inp_options: Path | None, layer_mapping: str | None,
            nodes: Path | None, facilities: Path | None, settlements: Path | None, dem: Path | None,
            crs: str | None, mapping: Path | None, tolerance_m: float, fix: bool, split_crossings: bool,
            out: Path) -> None:
    """Build a network from GIS layers; write the GeoPackage, the EPANET INP beside it and validation.csv.

    Pipe ends are snapped into nodes within --tolerance-m (nodes are created where
    ends meet without one); elevations come from --dem or the nodes' elevation.
    Every topology finding (dangling ends, near misses, crossings, disconnected
    parts, nodes without a source, implausible values) is listed in validation.csv.

    WNTR's layers (--layers, or --pipes/--nodes/--tanks/--reservoirs/--pumps/--valves
    with start_node_name/end_node_name) are joined by node name and rebuilt with the
    options, patterns, curves and controls of --inp-options; the INP written solves
    like the model the layers came from.
    """
    from ..build import build_network, write_built
    from ..gis_schema import build_from_layers, looks_like_wntr

    if crs is not None and crs.strip().isdigit():
        crs = f"EPSG:{crs.strip()}"
    wntr_schema = any(v is not None for v in (layers, tanks, reservoirs, pumps, valves, inp_options,
                                              layer_mapping)) or looks_like_wntr(pipes)
    if wntr_schema:
        ours = {"--facilities": facilities, "--settlements": settlements, "--dem": dem, "--mapping": mapping,
                "--fix": fix or None, "--split-crossings": split_crossings or None}
        bad = [k for k, v in ours.items() if v is not None]
        if bad:
            raise click.UsageError(f"{', '.join(bad)} apply to our own layer schema, not to WNTR's layers "
                                   "(--layers/--tanks/--reservoirs/--pumps/--valves/--inp-options); leave them out")
    elif pipes is None:
        raise click.UsageError("give --pipes (our layers) or --layers (a folder or GeoPackage of WNTR's layers)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if wntr_schema:
            net, findings, fixes = build_from_layers(layers, inp_options=inp_options, layer_mapping=layer_mapping,
                                                     crs=crs, tolerance_m=tolerance_m, junctions=nodes, tanks=tanks,
                                                     reservoirs=reservoirs, pipes=pipes, pumps=pumps, valves=valves)
        else:
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
