"""``watersupply criticality``: rank every pipe (or valve segment) by the people left without water."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ._common import UserError, default_out, handle_errors, load_network_arg, network_options

ENGINE_CHOICES = ("epanet2.2", "epanet2.3")


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:,.1f}"
    try:
        import pandas as pd

        if v is pd.NA:
            return "–"
    except ImportError:  # pragma: no cover
        pass
    return f"{v:,}" if isinstance(v, int) else str(v)


@click.command("criticality")
@network_options
@click.option("--pipes", default="all", show_default=True, metavar="main|branch|all|ID,ID…",
              help="Pipes to analyse: a class, all, or a comma-separated list of pipe ids.")
@click.option("--segments", is_flag=True,
              help="Analyse valve-isolation segments (needs the network's 'valves' layer) instead of single pipes.")
@click.option("--duration-h", type=float, default=24.0, show_default=True,
              help="Simulated hours; each element is lost for the whole run.")
@click.option("--workers", type=int, default=None, metavar="N",
              help="Local worker processes (default: the number of cores; 1 = this process).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler to run on, e.g. tcp://10.0.0.5:8786 (see `dask scheduler`).")
@click.option("--engine", type=click.Choice(ENGINE_CHOICES), default="epanet2.2", show_default=True,
              help="EPANET library: WNTR's 2.2 (same answers as WNTR's EpanetSimulator) or owa-epanet's 2.3.")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network name>).")
@click.option("--no-map", is_flag=True, help="Skip criticality_map.html.")
@click.option("--top", type=int, default=15, show_default=True, help="Rows of the ranking shown on the terminal.")
@handle_errors
def command(network: Path | None, inp: Path | None, crs: str | None, pipes: str, segments: bool,
            duration_h: float, workers: int | None, scheduler: str | None, engine: str, out: Path | None,
            no_map: bool, top: int) -> None:
    """Rank pipes (or valve segments) by the people left without water when each is lost.

    For every element: people and person-hours without water, demand not served (m³),
    the settlements affected and the worst pressure drop elsewhere, under
    pressure-dependent demand. Writes criticality.csv, a 'criticality' layer in
    results.gpkg (other layers kept) and criticality_map.html.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn
    from rich.table import Table

    from ..criticality import pipe_criticality, write_criticality
    from ..model import metadata

    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if not duration_h > 0:
        raise UserError(f"--duration-h must be > 0, got {duration_h}")
    if top < 0:
        raise UserError(f"--top must be >= 0, got {top}")
    net, name = load_network_arg(network, inp, crs)
    out_dir = out if out is not None else default_out(name)

    err = Console(stderr=True, highlight=False)
    what = "segments" if segments else "pipes"
    with Progress(TextColumn(f"[bold]criticality[/] {what}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err,
                  transient=False, disable=not err.is_terminal) as bar:
        task = bar.add_task("sweep", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        timings: dict[str, float] = {}
        table = pipe_criticality(net, pipes=pipes, segments=segments, duration_h=duration_h, workers=workers,
                                 scheduler=scheduler, progress=progress, engine=engine, timings=timings)
    md = metadata(net)
    files = write_criticality(net, table, out_dir, make_map=not no_map,
                              title=f"{md.get('title_en', name)} — criticality")

    console = Console(highlight=False, width=max(Console().width, 150))
    if top:
        view = Table(title=f"{name}: most critical {what} (关键管段, by people without water)")
        cols = [("rank", "#"), ("class", "class"), ("people_without_water", "people"),
                ("person_hours_without_water", "person-h"), ("demand_not_served_m3", "m³ lost"),
                ("settlements_zh", "居民点"), ("settlements_en", "settlements"),
                ("worst_pressure_drop_m", "drop m"), ("method", "method"), ("status", "status")]
        view.add_column("id")
        for _c, h in cols:
            view.add_column(h, justify="left" if h in ("居民点", "settlements", "method", "status", "class")
                            else "right")
        for eid, row in table.head(top).iterrows():
            view.add_row(str(eid), *[_cell(row[c]) for c, _h in cols])
        console.print(view)
    n = len(table)
    counts = table["method"].value_counts().to_dict()
    console.print(f"{n} {what} answered in {timings.get('total_s', 0):.1f} s: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    bad = table[table["status"] != "ok"]
    if len(bad):
        console.print(f"[yellow]{len(bad)} did not solve cleanly[/] (see the status and message columns): "
                      + ", ".join(map(str, bad.index[:8])) + (" …" if len(bad) > 8 else ""))
    console.print(f"Outputs in [bold]{out_dir}[/]:")
    for path in files.values():
        console.print(f"  {path}")
