"""``watersupply convert``: EPANET INP <-> network GeoPackage, losslessly."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ._common import handle_errors


@click.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write: .gpkg for an .inp input, .inp for a .gpkg input.")
@click.option("--crs", default=None, metavar="EPSG",
              help="For an .inp: CRS of its coordinates (without it they are drawn schematically). "
                   "For a .gpkg: CRS to write the INP coordinates in.")
@click.option("--units", default=None, metavar="UNITS",
              help="Flow units of the INP written (LPS, GPM, CMH ...; default: the model's own).")
@click.option("--inp-options", "inp_options", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="For WNTR GIS layers (wntr.network.to_gis): the INP or WNTR JSON with their patterns, curves, "
                   "controls and options.")
@click.option("--schema", type=click.Choice(["project", "wntr"]), default="project", show_default=True,
              help="Layout of a GeoPackage written: the project's layers, or WNTR's to_gis layers (junctions, "
                   "pipes, ...) for QGIS and back.")
@click.option("--check", is_flag=True,
              help="After writing an INP from a GeoPackage converted from an INP (or an INP to a GeoPackage), "
                   "solve both INP files with EPANET and report the largest differences.")
@handle_errors
def command(src: Path, out: Path, crs: str | None, units: str | None, inp_options: Path | None, schema: str,
            check: bool) -> None:
    """Convert SRC by extension: an EPANET .inp into a network .gpkg, or a .gpkg into an .inp.

    SRC may also be WNTR's GIS layers (a folder of *junctions.geojson, *pipes.geojson ... or a
    GeoPackage with those layers), with --inp-options for their patterns, curves and controls.

    Everything EPANET 2.2 expresses is carried (controls, rules, curves, power pumps, valves,
    roughness as given, demands, quality, options), so the INP written back solves like the
    original; EPANET 2.3 features that cannot be carried are refused by name.
    """
    import tempfile

    from ..conversion import convert_file
    from ..convert import equivalence

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = convert_file(src, out, crs=crs, units=units, inp_options=inp_options, schema=schema)
    for w in caught:
        if issubclass(w.category, UserWarning):
            click.echo(f"Warning: {w.message}", err=True)
    click.echo(f"wrote {path}")
    if check:
        if src.suffix.lower() == ".inp" and schema == "project":
            with tempfile.TemporaryDirectory(prefix="watersupply-convert-") as tmp:
                back = convert_file(path, Path(tmp) / "back.inp")
                diff = equivalence(src, back)
        else:
            click.echo("--check compares INP files: convert the INP you started from instead", err=True)
            return
        ok = bool(diff["ok"].all())
        click.echo(f"EPANET check over {len(diff)} reporting time(s): largest head difference "
                   f"{diff['max_head_diff_m'].max():.3g} m, largest flow difference "
                   f"{diff['max_flow_diff_ls'].max():.3g} L/s -> {'equivalent' if ok else 'NOT equivalent'}")
        if not ok:
            raise click.exceptions.Exit(1)
