"""``watersupply generate``: regenerate the bundled Tonghui reference network."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import UserError, handle_errors


@click.command("generate")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for tonghui_dem.tif, tonghui.gpkg and tonghui.inp (default: networks/tonghui of the "
                   "source tree; required when watersupply is installed from a wheel, and with --flat).")
@click.option("--flat", is_flag=True, default=False,
              help="Write the earlier flat-terraced reference model instead (watersupply.generator, kept for "
                   "reference; not bundled): needs -o/--out.")
@handle_errors
def command(out: Path | None, flat: bool) -> None:
    """Regenerate the Tonghui network (synthetic DEM, GeoPackage, INP) from the generator's documented parameters."""
    from .._resources import source_dir

    if flat:
        if out is None:
            raise UserError("--flat writes the flat reference model, which is not the bundled one: give the output "
                            "folder with -o/--out")
        from ..generator import write_tonghui as write
    else:
        from ..generator_hillside import write_tonghui_hillside as write

    folder = out
    if folder is None:
        networks = source_dir("networks")
        if networks is None:
            raise UserError("watersupply is installed as a package, whose bundled data is not rewritten; "
                            "give the output folder with -o/--out")
        folder = networks / "tonghui"
    files = write(folder)
    for kind, path in files.items():
        click.echo(f"{kind}: {path}")
