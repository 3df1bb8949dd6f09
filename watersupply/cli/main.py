"""The ``watersupply`` command group; each subcommand lives in its own module."""

from __future__ import annotations

import importlib
import logging

import click

from .. import __version__

#: Subcommand modules (``watersupply/cli/<name>.py`` exposing ``command``).
COMMANDS = ("run", "scenario", "audit", "criticality", "map", "build", "generate", "schedule", "design", "convert", "calibrate",
            "zones")


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it is used (keeps start-up fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_available())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        mod = _available().get(name)
        if mod is None:
            return None
        return importlib.import_module(f"watersupply.cli.{mod}").command


def _available() -> dict[str, str]:
    out = {}
    for mod in COMMANDS:
        spec = importlib.util.find_spec(f"watersupply.cli.{mod}")
        if spec is not None:
            out[mod.replace("_", "-")] = mod
    return out


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="watersupply")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def cli(verbose: int, quiet: bool) -> None:
    """GIS network model of an urban-rural integrated water supply system (WNTR/EPANET).

    Without options every command works on the bundled Tonghui (通惠街道) model.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("watersupply").setLevel(level)


if __name__ == "__main__":
    cli(prog_name="watersupply")
