"""``watersupply scenario``: list, validate and run outage and planning scenarios."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ._common import UserError, handle_errors


def _cell(v: object, digits: int = 0) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:,.{digits}f}"
    return str(v)


@click.group("scenario")
def command() -> None:
    """Outage and planning scenarios (YAML files in scenarios/): list, validate, run.

    A scenario names a network, a duration, a start hour and events (pipe_break,
    pump_station_outage, plant_outage, reservoir_out_of_service, demand_change,
    fire_flow, new_source, set_link). Runs use pressure-dependent demand and are
    compared with the baseline of the same network.
    """


@command.command("list")
@handle_errors
def list_command() -> None:
    """Table of the shipped scenarios with their titles."""
    from rich.console import Console
    from rich.table import Table

    from ..scenario import load_scenario, shipped_scenarios

    table = Table(title="Shipped scenarios (情景)")
    for h in ("name", "标题", "title", "events", "file"):
        table.add_column(h)
    for path in shipped_scenarios():
        sc = load_scenario(path)
        kinds = ", ".join(sorted({e.type for e in sc.events})) or "–"
        table.add_row(sc.name, sc.title_zh, sc.title_en, kinds, path.name)
    Console(highlight=False, width=max(Console().width, 160)).print(table)


@command.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--network", "network", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Check against this network (.gpkg or .inp) instead of the scenarios' own.")
@click.option("--crs", default=None, metavar="EPSG", help="CRS of an INP network's coordinates.")
@handle_errors
def validate_command(files: tuple[str, ...], network: Path | None, crs: str | None) -> None:
    """Check scenario FILES (paths or shipped names): schema, times and element ids against the network."""
    from .._errors import WatersupplyError
    from ..scenario import prepare_scenarios

    problems = []
    for f in files:
        try:
            job = prepare_scenarios([f], network=network, crs=crs)[0]
        except WatersupplyError as exc:
            problems.append(str(exc))
            continue
        click.echo(f"ok: {f} (scenario {job.name!r} on network {job.network_name!r})")
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        for p in problems:
            click.echo(f"Error: {p}", err=True)
        raise UserError(f"{len(problems)} of {len(files)} scenario files are invalid")


@command.command("run")
@click.argument("files", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Run every shipped scenario.")
@click.option("-w", "--workers", type=int, default=None,
              help="Parallel processes (default: min(2, number of scenarios)).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Parent output folder; each scenario writes to <out>/<name>/ (default: out/<network>).")
@click.option("--network", "network", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run on this network GeoPackage instead of the scenarios' own.")
@click.option("--inp", "inp", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run on this EPANET .inp file instead of the scenarios' own network.")
@click.option("--crs", default=None, metavar="EPSG", help="CRS of the INP coordinates (with --inp).")
@click.option("--no-map", is_flag=True, help="Skip map.html.")
@click.option("--no-age", is_flag=True, help="Skip the water-age run (faster).")
@handle_errors
def run_command(files: tuple[str, ...], run_all: bool, workers: int | None, out: Path | None,
                network: Path | None, inp: Path | None, crs: str | None, no_map: bool, no_age: bool) -> None:
    """Run scenario FILES (paths or shipped names) and write results.gpkg, diff.csv, report.md, map.html.

    All files are validated first; if one is invalid nothing runs. Scenarios run
    in parallel processes, each in its own temporary EPANET folder.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..report import served_text
    from ..scenario import run_scenario_files, shipped_scenarios

    if network is not None and inp is not None:
        raise UserError("give either --network or --inp, not both")
    if crs is not None and inp is None:
        raise UserError("--crs applies to --inp only")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    names = list(files) + ([str(p) for p in shipped_scenarios()] if run_all else [])
    if not names:
        raise UserError("give scenario files or shipped names (see 'watersupply scenario list'), or --all")
    console = Console(highlight=False, width=max(Console().width, 140), stderr=True)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    summaries: list[dict] = []
    task_ids: dict[str, int] = {}

    def started(jobs: list) -> None:
        progress.start()
        task_ids["all"] = progress.add_task("scenarios", total=len(jobs))

    def finished(summary: dict) -> None:
        summaries.append(summary)
        if "error" in summary:
            progress.console.print(f"[red]✘ {summary['name']}[/]: {summary['error']}")
        else:
            h = summary["headline"]
            served = served_text(h["demand_served_pct"], summary.get("unbalanced_hours", ""))
            progress.console.print(f"[green]✔ {summary['name']}[/]: {h['person_hours_without_water']:,.0f} "
                                   f"person-hours without water, peak {h['people_without_water_max']:,.0f} people, "
                                   f"demand served {served} → {summary['out_dir']}")
        progress.advance(task_ids["all"])

    try:
        results = run_scenario_files(names, out=out, network=inp if inp is not None else network, crs=crs,
                                     workers=workers, make_map=not no_map, age=not no_age, on_start=started,
                                     on_done=finished)
    finally:
        if task_ids:
            progress.stop()
    table = Table(title="Scenario results (情景结果)")
    for h in ("scenario", "person-hours w/o water", "peak people", "settlements hit", "served %", "output"):
        table.add_column(h, justify="left" if h in ("scenario", "output") else "right")
    for s in results:
        if "error" in s:
            table.add_row(s["name"], "[red]failed[/]", "", "", "", s["out_dir"])
            continue
        h = s["headline"]
        table.add_row(s["name"], _cell(h["person_hours_without_water"]), _cell(h["people_without_water_max"]),
                      str(h["settlements_affected"]),
                      _cell(h["demand_served_pct"], 2) if not s.get("unbalanced_hours") else "n/a (unbalanced)",
                      s["out_dir"])
    Console(highlight=False, width=max(Console().width, 140)).print(table)
    failed = [s for s in results if "error" in s]
    if failed:
        raise UserError(f"{len(failed)} scenario(s) failed: " + "; ".join(f"{s['name']}: {s['error']}"
                                                                          for s in failed))
