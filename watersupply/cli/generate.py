"""``watersupply generate``: regenerate the bundled Tonghui reference network."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import handle_errors


@click.command("generate")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for tonghui.gpkg and tonghui.inp (default: the bundled networks/tonghui).")
@handle_errors
def command(out: Path | None) -> None:
    """Regenerate the Tonghui network (GeoPackage + INP) from the generator's documented parameters."""
    from ..generator import write_tonghui
    from ..io import NETWORKS_DIR

    folder = out if out is not None else NETWORKS_DIR / "tonghui"
    files = write_tonghui(folder)
    for kind, path in files.items():
        click.echo(f"{kind}: {path}")
