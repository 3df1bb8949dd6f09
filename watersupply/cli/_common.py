"""Shared pieces of the CLI: error handling, network options, output folders."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .._errors import HydraulicError, WatersupplyError

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("watersupply")


class UserError(click.ClickException):
    """A problem with the user's input: one line on stderr, exit code 2, no traceback."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def handle_errors(func: F) -> F:
    """Turn the library's input errors into :class:`UserError` (exit 2)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HydraulicError as exc:
            raise UserError(f"hydraulic failure: {exc}") from None
        except WatersupplyError as exc:
            raise UserError(str(exc)) from None
        except FileNotFoundError as exc:
            raise UserError(f"file not found: {exc.filename or exc}") from None

    return wrapper  # type: ignore[return-value]


def _remember_as_is(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta["watersupply.as_is"] = bool(value)
    return value


def network_options(func: F) -> F:
    """Add ``--network``, ``--inp``, ``--crs`` and ``--as-is`` to a command."""
    func = click.option("--as-is", "as_is", is_flag=True, expose_value=False, callback=_remember_as_is,
                        help="Solve the EPANET model of the INP (or of a GeoPackage converted from one) exactly "
                             "as it is: no pressure-dependent demand, no 24 h horizon for a single-period file, "
                             "no added chlorine source.")(func)
    func = click.option("--crs", default=None, metavar="EPSG",
                        help="CRS of the INP coordinates (e.g. EPSG:4545); without it they are drawn schematically.")(func)
    func = click.option("--inp", "inp", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="An EPANET .inp file to use instead of a GeoPackage.")(func)
    func = click.option("--network", "network", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Network GeoPackage, or a bundled network's name (default: the bundled Tonghui "
                             "model, 'tonghui').")(func)
    return func


def load_network_arg(network: Path | None, inp: Path | None, crs: str | None) -> tuple[dict, str]:
    """Load the network the user chose (see :func:`watersupply.loader.load_network`); return it and
    a short name for the output folder. Conversion warnings are shown on stderr."""
    from ..loader import load_network, network_name
    from ..model import analysis_changes, is_epanet_model, keep_as_is

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = load_network(network=network, inp=inp, crs=crs)
    for w in caught:
        if issubclass(w.category, UserWarning):
            click.echo(f"Warning: {w.message}", err=True)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get("watersupply.as_is"):
        if not is_epanet_model(net):
            raise UserError("--as-is applies to a network that carries its own EPANET model (an INP file, or a "
                            "GeoPackage converted from one with `watersupply convert`); drop it")
        net = keep_as_is(net)
    elif ctx is not None and ctx.info_name != "run":  # run lists them in its report and warnings
        for change in analysis_changes(net):
            click.echo(f"Warning: {change}", err=True)
    return net, network_name(network=network, inp=inp)


def default_out(name: str) -> Path:
    return Path("out") / name
