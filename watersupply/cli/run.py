"""``watersupply run``: the baseline run on the bundled Tonghui model or any network."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ._common import UserError, default_out, handle_errors, load_network_arg, network_options


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:,.2f}"
    return str(v)


@click.command("run")
@network_options
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network name>).")
@click.option("--duration-h", type=float, default=None, help="Simulated hours (default 72, or the network's).")
@click.option("--no-map", is_flag=True, help="Skip map.html.")
@handle_errors
def command(network: Path | None, inp: Path | None, crs: str | None, out: Path | None,
            duration_h: float | None, no_map: bool) -> None:
    """Simulate the baseline (72 h, pressure-dependent demand, chlorine, water age) and write
    results.gpkg, summary.csv, report.md and map.html."""
    from rich.console import Console
    from rich.table import Table

    from ..baseline import run_baseline

    if duration_h is not None and not duration_h > 0:
        raise UserError(f"--duration-h must be > 0, got {duration_h}")
    net, name = load_network_arg(network, inp, crs)
    out_dir = out if out is not None else default_out(name)
    run = run_baseline(net, out_dir=out_dir, make_map=not no_map, duration_h=duration_h)

    console = Console(highlight=False, width=max(Console().width, 140))
    table = Table(title=f"{name}: villages and communities (村与社区)")
    cols = [("name_zh", "名称"), ("name_en", "name"), ("population", "pop."), ("demand_m3d", "m³/d"),
            ("min_pressure_m", "min p (m)"), ("service_head_m", "need (m)"), ("pressure_compliance", "p ok"),
            ("min_chlorine_mgL", "min Cl"), ("max_age_h", "max age h")]
    cols = [(c, h) for c, h in cols if c in run.settlements]
    for _, h in cols:
        table.add_column(h, justify="left" if h in ("名称", "name") else "right")
    verdicts = run.audit.table if run.audit is not None else None
    if verdicts is not None:
        table.add_column("同网·同价·同质", justify="left")
    style = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]",
             "not assessed": "[magenta]n/a[/]"}
    for sid, row in run.settlements.iterrows():
        cells = []
        for c, _ in cols:
            if c == "min_chlorine_mgL" and str(row.get("chlorine_status", "assessed")) not in ("assessed", "nan"):
                cells.append("[magenta]not assessed[/]")
            elif c == "max_age_h" and str(row.get("age_status", "")).startswith("not settled"):
                cells.append("[magenta]not settled[/]")
            else:
                cells.append(_cell(row[c]))
        if verdicts is not None:
            v = verdicts.loc[sid] if sid in verdicts.index else None
            cells.append(" ".join(style.get(str(v[f"{d}_verdict"]), "?") for d in ("network", "price", "quality"))
                         + f" ({v['score']:.0f})" if v is not None else "")
        table.add_row(*cells)
    console.print(table)
    checks = Table(title="Soundness checks (水力合理性)")
    for h in ("check", "figure", "target", "ok"):
        checks.add_column(h)
    for check, row in run.soundness.iterrows():
        ok = ("[magenta]not assessed[/]" if str(row["target"]) == "not assessed" else
              "[green]pass[/]" if row["passed"] else "[red]FAIL[/]")
        checks.add_row(str(check), _cell(float(row["figure"])), str(row["target"]), ok)
    console.print(checks)
    q = run.result.quality
    if q is not None:
        console.print(f"Quality: {q.summary()}")
    sanity = run.result.sanity
    n_events = 0 if sanity is None else len(sanity)
    console.print(f"EPANET sanity report: {n_events} warning/failure row(s) by element and hour "
                  f"(report.md, section 'EPANET warnings and failures')")
    for w in run.result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"Outputs in [bold]{out_dir}[/]:")
    for path in run.files.values():
        console.print(f"  {path}")
