"""``watersupply calibrate``: fit pipe roughness and demand groups to field logs."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ._common import UserError, default_out, handle_errors, load_network_arg, network_options


def _window(text: str | None, name: str) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        a, b = (float(v) for v in text.split(":"))
    except ValueError:
        raise UserError(f"--{name} must be H0:H1 in hours from the run start (e.g. 0:48), got {text!r}") from None
    return a, b


@click.command("calibrate")
@network_options
@click.option("--observations", "observations", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Field logs: CSV time,element,quantity,value,unit[,sigma] (quantity pressure|head|level|flow|demand).")
@click.option("--groups", "groups_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Roughness groups: CSV pipe,group[,lower,upper] (default: --roughness-by).")
@click.option("--roughness-by", default="diameter", show_default=True,
              help="Pipe attribute(s) for roughness groups: diameter, material, class, zone (comma-separated).")
@click.option("--demand-groups", "demand_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Demand groups: CSV node,group[,lower,upper] (default: --demand-by).")
@click.option("--demand-by", type=click.Choice(["zone", "reservoir_zone", "settlement"]), default="zone", show_default=True,
              help="Node attribute for demand-multiplier groups.")
@click.option("--status-groups", "status_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Links suspected closed: CSV link,group; each group is tried closed after the fit.")
@click.option("--fit-window", default=None, metavar="H0:H1", help="Hours fitted (default: first two thirds of the run).")
@click.option("--validate-window", default=None, metavar="H0:H1", help="Hours validated (default: the rest).")
@click.option("--start", default=None, metavar="ISO8601", help="Run start, when the log times are timestamps "
              "(default: the earliest timestamp).")
@click.option("--max-se", type=float, default=0.05, show_default=True,
              help="Largest relative standard error (at the initial values) of a group that is fitted (others "
                   "are kept at their initial values and named).")
@click.option("--tolerance", type=float, default=0.05, show_default=True,
              help="Largest half-width of a 95 % confidence interval, relative to the fitted factor, of a group "
                   "reported as identifiable (a finding).")
@click.option("--max-correlation", type=float, default=0.9, show_default=True,
              help="Groups whose estimates are correlated beyond this with another's are reported as not "
                   "identifiable (confounded).")
@click.option("--workers", type=int, default=None, help="Processes for the Jacobian (default: up to 2).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network name>/calibration).")
@handle_errors
def command(network: Path | None, inp: Path | None, crs: str | None, observations: Path, groups_csv: Path | None,
            roughness_by: str, demand_csv: Path | None, demand_by: str, status_csv: Path | None,
            fit_window: str | None, validate_window: str | None, start: str | None, max_se: float,
            tolerance: float, max_correlation: float, workers: int | None, out: Path | None) -> None:
    """Calibrate roughness and demand groups against pressure, flow and level logs (weighted least
    squares over the extended-period run, pressure-dependent demand), verify with a full EPANET run, and
    write calibrated.inp, calibrated.gpkg, parameters.csv, fit.csv, residuals.png and report.md."""
    from rich.console import Console
    from rich.table import Table

    from ..calibration import calibrate, demand_groups, read_observations, roughness_groups, status_groups
    from ..calibration.outputs import write_calibration

    if not 0 < max_se < 1:
        raise UserError(f"--max-se must be between 0 and 1 (a relative standard error), got {max_se}")
    if not 0 < tolerance < 1:
        raise UserError(f"--tolerance must be between 0 and 1 (a relative half-width), got {tolerance}")
    if not 0 < max_correlation <= 1:
        raise UserError(f"--max-correlation must be in (0, 1], got {max_correlation}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    fw, vw = _window(fit_window, "fit-window"), _window(validate_window, "validate-window")
    net, name = load_network_arg(network, inp, crs)
    obs = read_observations(observations, net, start=start)
    groups = roughness_groups(net, by=roughness_by, csv=groups_csv) + demand_groups(net, by=demand_by, csv=demand_csv)
    if status_csv is not None:
        groups += status_groups(net, status_csv)
    n_workers = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    res = calibrate(net, obs, groups=groups, fit_window=fw, validate_window=vw, max_se=max_se,
                    tolerance=tolerance, max_correlation=max_correlation, workers=n_workers)
    out_dir = out if out is not None else default_out(name) / "calibration"
    files = write_calibration(res, out_dir)

    console = Console(highlight=False, width=max(Console().width, 120))
    table = Table(title=f"{name}: calibration (模型校准), {res.n_evaluations} EPANET evaluations, {res.elapsed_s:.0f} s")
    for h in ("group", "state", "initial", "fitted", "95 % CI"):
        table.add_column(h, justify="left" if h in ("group", "state") else "right")
    for g, row in res.parameters.iterrows():
        ci = (f"{row['ci95_low']:.3g} – {row['ci95_high']:.3g} (±{row['ci95_pct']:.1f} %)"
              if str(row["state"]).startswith("fitted") else "–")
        table.add_row(str(g), str(row["state"]), f"{row['initial']:.4g}", f"{row['fitted']:.4g}", ci)
    console.print(table)
    ident = res.identifiability
    fit = ident["fit"]
    console.print(f"sensitivity rank {ident['rank']} of {ident['n_groups']}, condition {ident['condition']:.3g} "
                  f"(initial values); at the fit rank {fit['rank']}, condition {fit['condition']:.3g}, s² {fit['s2']:.3g}")
    console.print("identifiable (findings): " + (", ".join(ident["findings"]) or "none"))
    for g, why in ident["not_identifiable"].items():
        console.print(f"[yellow]{g}[/]: {why}")
    for line in ident.get("separating_sensors") or []:
        console.print(f"  would separate them: {line}")
    for (window, q), row in res.overall.iterrows():
        if q in ("pressure", "head", "level"):
            console.print(f"{window:8s} {q:8s} n={int(row['n']):5d}  RMSE {row['rmse']:.3f} m (before {row['rmse_before']:.3f})"
                          f"  within ±0.5 m {100 * row['within_0.5m']:.1f} %  ±1.0 m {100 * row['within_1m']:.1f} %")
        else:
            console.print(f"{window:8s} {q:8s} n={int(row['n']):5d}  flow error {row['flow_error_pct']:.2f} % "
                          f"(before {row['flow_error_pct_before']:.2f} %)")
    for w in res.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"Outputs in [bold]{out_dir}[/]:")
    for path in files.values():
        console.print(f"  {path}")
