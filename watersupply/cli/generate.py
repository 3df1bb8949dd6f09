"""``watersupply generate``: regenerate the bundled Tonghui reference network."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import UserError, handle_errors


@click.command("generate")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for tonghui.gpkg and tonghui.inp (default: networks/tonghui of the source tree; "
                   "required when watersupply is installed from a wheel).")
@handle_errors
def command(out: Path | None) -> None:
    """Regenerate the Tonghui network (GeoPackage + INP) from the generator's documented parameters."""
    from ..generator import write_tonghui
    from .._resources import source_dir

    folder = out
    if folder is None:
        networks = source_dir("networks")
        if networks is None:
            raise UserError("watersupply is installed as a package, whose bundled data is not rewritten; "
                            "give the output folder with -o/--out")
        folder = networks / "tonghui"
    files = write_tonghui(folder)
    for kind, path in files.items():
        click.echo(f"{kind}: {path}")
