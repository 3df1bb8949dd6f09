"""``watersupply design``: least-cost pipe works for a failing scenario, or for a network and a pressure target."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click

from ._common import UserError, default_out, handle_errors, load_network_arg, network_options

ACTION_CHOICES = ("size", "replace", "parallel")


def _table(spec: str | None):
    from ..design import DEFAULT_TABLES, pipe_costs, read_candidates

    if spec is None:
        return pipe_costs("pe+di")
    if all(part.strip().lower() in DEFAULT_TABLES for part in spec.split("+")):
        return pipe_costs(spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = read_candidates(spec)
    for w in caught:
        click.echo(f"Warning: {w.message}", err=True)
    return table


def _extra(spec: str | None, default: str | None) -> str | None:
    if spec is None:
        return default
    if spec == "auto" and default is None:
        raise UserError("--pumps/--storage auto needs a scenario; give 'all', 'none' or ids")
    return None if spec == "none" else spec


def _progress(quiet: bool):
    last = [0.0]

    def report(stage: str, step: int, best: float) -> None:
        now = time.perf_counter()
        if quiet or now - last[0] < 5.0:
            return
        last[0] = now
        click.echo(f"  {stage} {step}: best feasible cost {best:,.0f}" if best == best else f"  {stage} {step}: "
                   "no feasible design yet", err=True)

    return report


@click.command("design")
@click.argument("scenario", required=False)
@network_options
@click.option("--candidates", default=None, metavar="CSV|pe|di|pe+di",
              help="Candidate pipe table: a CSV (diameter_mm, unit_cost_<currency>_per_m; optional roughness_c, "
                   "material, nominal) or a shipped table (pe: PE100 by dn, di: ductile iron by DN). "
                   "Default: pe+di.")
@click.option("--min-pressure", type=float, default=None, metavar="M",
              help="Required pressure (m) at every junction (network mode, instead of a scenario).")
@click.option("--pipes", default=None, metavar="auto|all|zone:Z|ID,ID…",
              help="Candidate pipes. Default: auto for a scenario (the pipes whose head loss matters most on the "
                   "paths to the failing nodes), all otherwise.")
@click.option("--n-auto", type=int, default=30, show_default=True, help="How many pipes --pipes auto picks.")
@click.option("--action", type=click.Choice(ACTION_CHOICES), default=None,
              help="size: every candidate sized and paid for (new network); replace: keep or replace with a larger "
                   "size; parallel: lay a duplicate. Default: replace for a scenario, size otherwise.")
@click.option("--pumps", default=None, metavar="auto|all|none|ID,ID…",
              help="Duty pumps whose upgrade the design may choose (run the standby as a 2nd duty pump, or replace "
                   "with a larger catalogue size). Default: auto for a scenario (pumps running ≥ 95 %% of the time), "
                   "none otherwise.")
@click.option("--storage", default=None, metavar="auto|all|none|ID,ID…",
              help="Reservoirs (tanks) where the design may add storage. Default: auto for a scenario (tanks "
                   "reaching their minimum level), none otherwise.")
@click.option("--max-velocity", type=float, default=None, metavar="M/S",
              help="Velocity limit in the pipes laid (scenario default: the standard's 2.5 m/s; else none).")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed, same answer).")
@click.option("--pop-size", type=int, default=None,
              help="GA population (default 200; for a scenario 8 with --method construct, 40 with ga).")
@click.option("--generations", type=int, default=None,
              help="GA generations (default 250; for a scenario 3 with --method construct, 40 with ga).")
@click.option("--kicks", type=int, default=0, show_default=True,
              help="Rounds of iterated local search after the GA and polishing (seeded).")
@click.option("--restarts", type=int, default=None,
              help="Independent seeded GA runs, the cheapest kept (default 2 in network mode, 1 for a scenario).")
@click.option("--workers", type=int, default=None,
              help="Processes for the restarts (default: min(restarts, 2)).")
@click.option("--time-limit", type=float, default=None, metavar="S",
              help="Budget of the search in seconds (default: none; for a scenario 600 for the cost reduction "
                   "with --method construct, 1200 with ga); the best design found by then is verified and "
                   "reported, with a note.")
@click.option("--pareto", is_flag=True, help="Also trace the cost–resilience (Todini) front: pareto.csv and pareto.png.")
@click.option("--engine", type=click.Choice(("epanet2.2", "epanet2.3")), default="epanet2.2", show_default=True,
              help="EPANET library for the search (the verification always uses WNTR's EPANET 2.2).")
@click.option("--method", type=click.Choice(("construct", "ga")), default="construct", show_default=True,
              help="Scenario search: construct (feasible-first along the supply chain of the failing nodes, then "
                   "pymoo's GA and local search to cut the cost) or ga (pymoo's GA from scratch over --pipes, "
                   "--pumps, --storage).")
@click.option("--max-evaluations", type=int, default=100, show_default=True,
              help="With --method construct, the cost reduction's budget of EPANET solves (reproducible).")
@click.option("--surrogate/--no-surrogate", default=True, show_default=True,
              help="With --method construct, search on the first day of the scenario (verified on the full run).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network>/design).")
@handle_errors
def command(scenario: str | None, network: Path | None, inp: Path | None, crs: str | None, candidates: str | None,
            min_pressure: float | None, pipes: str | None, n_auto: int, action: str | None,
            pumps: str | None, storage: str | None,
            max_velocity: float | None, seed: int, pop_size: int | None, generations: int | None, kicks: int,
            restarts: int | None, workers: int | None,
            time_limit: float | None, pareto: bool, engine: str, method: str, max_evaluations: int, surrogate: bool,
            out: Path | None) -> None:
    """Least-cost pipe works that make SCENARIO pass, or that meet --min-pressure on a network.

    \b
    watersupply design food_park_expansion
    watersupply design --inp NET.inp --candidates COSTS.csv --min-pressure 30

    Searches with pymoo's GA (EPANET kept open in memory) and local search, verifies
    the answer with a full EPANET run and writes designed.inp, designed.gpkg (with a
    'works' layer), works.csv, design_summary.csv, pressure_check.csv and report.md;
    for a scenario also the scenario re-run on the designed network.
    """
    from ..design import design_network, design_scenario
    from ..design.output import write_design
    from ..report import served_text

    if scenario is not None and min_pressure is not None:
        raise UserError("give a scenario or --min-pressure, not both (a scenario sets its own service heads)")
    if scenario is None and min_pressure is None:
        raise UserError("give a scenario (e.g. food_park_expansion) or a pressure target with --min-pressure M")
    if time_limit is not None and not time_limit > 0:
        raise UserError(f"--time-limit must be > 0 s, got {time_limit}")
    if restarts is not None and restarts < 1:
        raise UserError(f"--restarts must be ≥ 1, got {restarts}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be ≥ 1, got {workers}")
    if kicks < 0:
        raise UserError(f"--kicks must be ≥ 0, got {kicks}")
    if max_evaluations < 1:
        raise UserError(f"--max-evaluations must be ≥ 1, got {max_evaluations}")
    if n_auto < 1:
        raise UserError(f"--n-auto must be ≥ 1, got {n_auto}")
    if max_velocity is not None and not max_velocity > 0:
        raise UserError(f"--max-velocity must be > 0, got {max_velocity}")
    table = _table(candidates)
    report = _progress(False)
    if scenario is not None:
        from ..scenario import load_scenario, resolve_scenario

        sc = load_scenario(resolve_scenario(scenario))
        net = None
        if network is not None or inp is not None:
            net, _name = load_network_arg(network, inp, crs)
        click.echo(f"Designing the works for scenario {sc.name} ({sc.title_en}) …", err=True)
        ga = method == "ga"
        sd = design_scenario(sc, net=net, candidates=table, pipes=pipes or "auto", n_auto=n_auto,
                             action=action or "replace", max_velocity_ms=max_velocity, seed=seed,
                             pop_size=pop_size or (40 if ga else 8), generations=generations or (40 if ga else 3),
                             kicks=kicks, restarts=restarts or 1, workers=workers or min(restarts or 1, 2),
                             time_limit_s=time_limit if time_limit is not None else (1200.0 if ga else 600.0),
                             pareto=pareto, engine=engine, progress=report,
                             pumps=_extra(pumps, "auto"),
                             storage=_extra(storage, "auto"), method=method, surrogate=surrogate,
                             max_evaluations=max_evaluations)
        result, name = sd.design, sd.network_name
        out_dir = out if out is not None else default_out(name) / "design"
        files = write_design(result, out_dir, net=sd.designed_net, title=f"{sc.title_zh} {sc.title_en}", scenario=sd)
    else:
        from ..convert import _read_wn, network_from_wntr
        from ..model import to_wntr

        net, name = load_network_arg(network, inp, crs)
        if inp is not None:
            wn = _read_wn(Path(inp))  # the file's own model, exactly (read_inp above has validated it)
            units = wn.options.hydraulic.inpfile_units or "LPS"
        else:
            wn, units = to_wntr(net), "LPS"
        result = design_network(wn, table, min_pressure=min_pressure, pipes=pipes or "all",
                                action=action or "size", max_velocity_ms=max_velocity, seed=seed,
                                pop_size=pop_size or 200, generations=generations or 250, kicks=kicks,
                                restarts=restarts or 2, workers=workers or min(restarts or 2, 2),
                                time_limit_s=time_limit,
                                pareto=pareto, engine=engine, progress=report, pumps=_extra(pumps, None),
                                storage=_extra(storage, None))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            designed = network_from_wntr(result.wn, crs=crs, name=f"{name}_designed", source=str(inp or network))
        out_dir = out if out is not None else default_out(name) / "design"
        files = write_design(result, out_dir, net=designed, title=name, inp_units=units)
        sd = None
    v = result.verification
    n_pipes = int((result.works["pipe"].astype(str) != "").sum()) if len(result.works) else 0
    n_other = len(result.works) - n_pipes
    click.echo(f"Total cost {result.cost:,.0f} {result.currency}: {n_pipes} pipes"
               f"{f', {n_other} pump/storage works' if n_other else ''}, "
               f"{result.evaluations:,} EPANET evaluations, {result.time_s:,.0f} s")
    click.echo(f"Full EPANET check: {'feasible' if result.feasible else 'NOT feasible'}, minimum pressure "
               f"{v['min_pressure_m']:.2f} m, smallest margin over the required head {v['worst_margin_m']:+.2f} m "
               f"at {v['worst_node']}")
    if sd is not None and sd.verdict_after:
        b, a = sd.verdict_before, sd.verdict_after
        served_b, served_a = (served_text(v["demand_served_pct"], v["unbalanced_hours"], 1) for v in (b, a))
        click.echo(f"Scenario re-run: existing network {'passes' if b['passes'] else 'fails'} "
                   f"(demand served {served_b}), designed network "
                   f"{'passes' if a['passes'] else 'fails'} (demand served {served_a}, "
                   f"{a['nodes_below_target']} nodes below service head)")
    for note in result.notes:
        click.echo(f"Note: {note}")
    click.echo(f"Outputs in {out_dir}:")
    for key in sorted(files):
        if "/" not in key:
            click.echo(f"  {files[key]}")
    if not result.feasible:
        raise SystemExit(1)
