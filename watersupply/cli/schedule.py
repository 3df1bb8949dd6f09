"""``watersupply schedule``: pump schedules that buy electricity in the valley hours (the 同价 lever)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import default_out, handle_errors, load_network_arg, network_options


@click.command("schedule")
@network_options
@click.option("--tariff", "tariff", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Time-of-use tariff YAML (default: the bundled, assumed Chongqing structure).")
@click.option("--max-starts", type=click.IntRange(min=1), default=6, show_default=True,
              help="Most starts per pump per day.")
@click.option("--days", type=click.IntRange(min=2, max=7), default=2, show_default=True,
              help="Days of each EPANET verification run (the schedule repeats daily).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the tie-break between equal schedules.")
@click.option("--max-iter", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most MILP + EPANET rounds.")
@click.option("--no-audit", is_flag=True, help="Skip the cost to serve per settlement (the 同价 audit).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network>/schedule).")
@handle_errors
def command(network: Path | None, inp: Path | None, crs: str | None, tariff: Path | None, max_starts: int,
            days: int, seed: int, max_iter: int, no_audit: bool, out: Path | None) -> None:
    """Optimise every duty pump's hourly on/off schedule against a time-of-use tariff.

    Minimises the daily energy cost subject to service head at every demand node every hour, tank levels
    within limits, every tank periodic (ends the day at or above its start), at most --max-starts starts per
    pump per day and standby pumps off; every schedule is verified by a full EPANET run of --days days.
    Writes schedule.csv, scheduled.inp, scheduled.gpkg, schedule_summary.csv, cost_to_serve.csv,
    schedule_checks.csv, a PNG per station and schedule_report.md.
    """
    from rich.console import Console

    from ..schedule import optimise_schedule
    from ..schedule.output import cost_to_serve, schedule_summary, write_schedule
    from ..tariff import load_tariff

    tf = load_tariff(tariff)
    net, name = load_network_arg(network, inp, crs)
    res = optimise_schedule(net, tariff=tf, max_starts=max_starts, days=days, seed=seed, max_iter=max_iter)
    cost, notes = (cost_to_serve(net, res) if not no_audit else (None, ["cost to serve skipped (--no-audit)"]))
    out_dir = out if out is not None else default_out(name) / "schedule"
    files = write_schedule(res, net, out_dir, cost=cost, notes=notes)
    summary = schedule_summary(res)
    console = Console(highlight=False, width=max(Console().width, 110))
    tot = summary.loc["total"]
    console.print(f"{name}: daily pumping cost {tot['baseline_cost_yuan_day']:,.0f} → "
                  f"{tot['optimised_cost_yuan_day']:,.0f} ¥ ({tot['saving_pct']:.1f} % saved; "
                  f"{tot['saving_per_m3_pct']:.1f} % per m³ lifted) under "
                  f"{tf.name}{' (assumed tariff)' if tf.assumed else ''}; {len(res.iterations)} round(s), "
                  f"{res.epanet_runs} EPANET runs, {res.seconds:.0f} s")
    for sid, r in summary.drop(index="total").iterrows():
        console.print(f"  {sid}: {r['baseline_cost_yuan_day']:,.0f} → {r['optimised_cost_yuan_day']:,.0f} ¥/day "
                      f"({r['saving_pct']:.1f} %), {r['starts_per_day']} start(s)/day"
                      + ("" if set(res.pumps.loc[res.pumps["station_id"] == sid, "control"]) - {"level", "standby"}
                         else " — kept on its level controls"))
    failed = res.checks.index[~res.checks["passed"]]
    console.print("Checks: " + ("all passed" if not len(failed) else "[red]FAILED[/] " + ", ".join(failed)))
    console.print(f"Outputs in [bold]{out_dir}[/]:")
    for path in files.values():
        console.print(f"  {path}")
