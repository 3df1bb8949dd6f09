"""``watersupply generate``: regenerate the bundled Tonghui reference network."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import UserError, handle_errors


@click.command("generate")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for tonghui.gpkg and tonghui.inp (default: networks/tonghui of the source tree; "
                   "required when watersupply is installed from a wheel).")
@click.option("--hillside", is_flag=True, default=False,
              help="Regenerate the hillside preview model instead (synthetic DEM, zones, catalogue sizes; "
                   "networks/tonghui_hillside).")
@handle_errors
def command(out: Path | None, hillside: bool) -> None:
    """Regenerate the Tonghui network (GeoPackage + INP) from the generator's documented parameters."""
    from .._resources import source_dir

    if hillside:
        from ..generator_hillside import NAME
        from ..generator_hillside import write_tonghui_hillside as write
    else:
        from ..generator import write_tonghui as write
        NAME = "tonghui"

    folder = out
    if folder is None:
        networks = source_dir("networks")
        if networks is None:
            raise UserError("watersupply is installed as a package, whose bundled data is not rewritten; "
                            "give the output folder with -o/--out")
        folder = networks / NAME
    files = write(folder)
    for kind, path in files.items():
        click.echo(f"{kind}: {path}")
